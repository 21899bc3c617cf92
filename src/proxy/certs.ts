// The proxy's certificates: an ECDSA P-256 CA made once per data directory, and leaf certificates
// minted per SNI name from one reused key pair, signed in microseconds and cached. X.509 is
// written directly in DER (RFC 5280): the structures are fixed, and general ASN.1 libraries cost
// 10-20 ms per certificate, which is the whole budget for a first request to a new host.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { isIP } from "node:net";
import { createSecureContext, type SecureContext } from "node:tls";

// --- DER primitives -------------------------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer) => tlv(0x04, b);
const bitString = (b: Buffer, unusedBits = 0) => tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), b]));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));
const explicit = (n: number, content: Buffer) => tlv(0xa0 | n, content);

function integer(value: Buffer | number): Buffer {
  let bytes = typeof value === "number" ? Buffer.from([value]) : value;
  while (bytes.length > 1 && bytes[0] === 0 && bytes[1]! < 0x80) bytes = bytes.subarray(1);
  if (bytes[0]! >= 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const chunk: number[] = [];
    let v = part;
    do {
      chunk.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i]! |= 0x80;
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, "").slice(0, 14); // YYYYMMDDHHMMSS
  // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  subjectAltName: "2.5.29.17",
  subjectKeyId: "2.5.29.14",
  authorityKeyId: "2.5.29.35",
};

const name = (cn: string) => seq(set(seq(oid(OID.organization), utf8("agent-vault"))), set(seq(oid(OID.commonName), utf8(cn))));
const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

function keyId(publicKey: KeyObject): Buffer {
  // RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (the SPKI's last 65 bytes for P-256).
  const spki = publicKey.export({ type: "spki", format: "der" });
  return createHash("sha1")
    .update(spki.subarray(spki.length - 65))
    .digest();
}

interface CertificateSpec {
  readonly subject: string;
  readonly issuer: string;
  readonly publicKey: KeyObject;
  readonly signingKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: Buffer[];
}

function buildCertificate(spec: CertificateSpec): Buffer {
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    explicit(0, integer(2)),
    integer(serial),
    algorithm,
    name(spec.issuer),
    seq(time(spec.notBefore), time(spec.notAfter)),
    name(spec.subject),
    spec.publicKey.export({ type: "spki", format: "der" }),
    explicit(3, seq(...spec.extensions)),
  );
  const signature = sign("sha256", tbs, { key: spec.signingKey, dsaEncoding: "der" });
  return seq(tbs, algorithm, bitString(signature));
}

export function derToPem(der: Buffer, label = "CERTIFICATE"): string {
  const b64 = der
    .toString("base64")
    .match(/.{1,64}/g)!
    .join("\n");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

// --- the CA ------------------------------------------------------------------------------------

export interface CertificateAuthority {
  readonly certPem: string;
  /** PKCS#8 PEM; callers seal it in the vault and never write it in clear. */
  readonly keyPem: string;
}

export function createCertificateAuthority(now = new Date()): CertificateAuthority {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const der = buildCertificate({
    subject: "agent-vault local CA",
    issuer: "agent-vault local CA",
    publicKey,
    signingKey: privateKey,
    notBefore: new Date(now.getTime() - 3_600_000),
    notAfter: new Date(now.getTime() + 10 * 365 * 86_400_000),
    extensions: [
      extension(OID.basicConstraints, true, seq(bool(true), integer(0))),
      extension(OID.keyUsage, true, bitString(Buffer.from([0x06]), 1)), // keyCertSign, cRLSign
      extension(OID.subjectKeyId, false, octets(keyId(publicKey))),
    ],
  });
  return { certPem: derToPem(der), keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
}

// --- leaf certificates ---------------------------------------------------------------------------

const LEAF_LIFETIME_MS = 30 * 86_400_000;
const LEAF_RENEW_BEFORE_MS = 86_400_000;
const MAX_CACHED_LEAVES = 10_000;

/** Mints and caches one TLS context per host name, all sharing one P-256 key pair. */
export class LeafCertificates {
  private readonly caKey: KeyObject;
  private readonly caKeyId: Buffer;
  private readonly leafPublic: KeyObject;
  private readonly leafKeyPem: string;
  private readonly cache = new Map<string, { context: SecureContext; renewAt: number }>();

  constructor(ca: CertificateAuthority) {
    this.caKey = createPrivateKey(ca.keyPem);
    this.caKeyId = keyId(createPublicKey(this.caKey));
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.leafPublic = publicKey;
    this.leafKeyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  }

  /** The TLS context for `host` (a DNS name or an IP literal), minted on first use. */
  contextFor(host: string, now = Date.now()): SecureContext {
    const key = host.toLowerCase();
    const hit = this.cache.get(key);
    if (hit && hit.renewAt > now) return hit.context;
    if (this.cache.size >= MAX_CACHED_LEAVES) this.cache.delete(this.cache.keys().next().value!);
    const context = createSecureContext({ key: this.leafKeyPem, cert: this.mint(key, new Date(now)) });
    this.cache.set(key, { context, renewAt: now + LEAF_LIFETIME_MS - LEAF_RENEW_BEFORE_MS });
    return context;
  }

  /** A PEM leaf certificate for one name (exported for tests). */
  mint(host: string, now = new Date()): string {
    const ipVersion = isIP(host);
    const altName = ipVersion === 0 ? tlv(0x82, Buffer.from(host, "ascii")) : tlv(0x87, ipBytes(host, ipVersion));
    const der = buildCertificate({
      subject: host.length <= 64 ? host : host.slice(0, 64),
      issuer: "agent-vault local CA",
      publicKey: this.leafPublic,
      signingKey: this.caKey,
      notBefore: new Date(now.getTime() - 3_600_000),
      notAfter: new Date(now.getTime() + LEAF_LIFETIME_MS),
      extensions: [
        extension(OID.basicConstraints, true, seq()),
        extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)), // digitalSignature
        extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
        extension(OID.subjectAltName, false, seq(altName)),
        extension(OID.authorityKeyId, false, seq(tlv(0x80, this.caKeyId))),
      ],
    });
    return derToPem(der);
  }
}

function ipBytes(ip: string, version: number): Buffer {
  if (version === 4) return Buffer.from(ip.split(".").map(Number));
  const [head = "", tail = ""] = ip.split("::");
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const h = groups(head);
  const t = ip.includes("::") ? groups(tail) : [];
  const all = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return Buffer.from(all.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}
