// Reads the CA certificate and the bundle handed to agents back from disk, for `status` and
// `doctor`: whether they parse, the CA's fingerprint and validity, and whether a bundle holds our
// CA. Nothing here writes or trusts these files; they are the user's, so the agent can change them.
import { X509Certificate } from "node:crypto";
import { readFileNoFollow } from "../shared/files.ts";

/** A bundle bigger than this is not one we wrote (the system roots are about 220 KiB). */
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

export interface CaInfo {
  readonly path: string;
  /** SHA-256 of the certificate, colon-separated hex (what browsers and `openssl x509 -fingerprint -sha256` show). */
  readonly sha256: string;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly der: Buffer;
}

/** The certificates of a PEM bundle (unparsable blocks skipped), as DER. */
export function pemCertificates(text: string): Buffer[] {
  const out: Buffer[] = [];
  for (const block of text.match(PEM_BLOCK) ?? []) {
    try {
      out.push(new X509Certificate(block).raw);
    } catch {
      // a damaged block counts as no certificate
    }
  }
  return out;
}

/** Reads a PEM file without following a link; null when it is missing. Throws an AgentVaultError for a link or a special file. */
export function readPemFile(path: string): string | null {
  const bytes = readFileNoFollow(path);
  if (bytes === null) return null;
  return bytes.subarray(0, MAX_BUNDLE_BYTES).toString("utf8");
}

/** Parses our CA certificate; null when it is missing, throws when it is not a certificate. */
export function inspectCa(path: string): CaInfo | null {
  const text = readPemFile(path);
  if (text === null) return null;
  const cert = new X509Certificate(text);
  return {
    path,
    sha256: cert.fingerprint256,
    subject: cert.subject.replace(/\n/g, ", "),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    isCa: cert.ca,
    der: cert.raw,
  };
}

/** Whether a bundle's text holds the certificate `der`. */
export function bundleHolds(text: string, der: Buffer): boolean {
  return pemCertificates(text).some((c) => c.equals(der));
}
