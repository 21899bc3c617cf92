import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { createCertificateAuthority, LeafCertificates } from "../../src/proxy/certs.ts";

describe("certificates", () => {
  const ca = createCertificateAuthority();
  const leaves = new LeafCertificates(ca);

  test("the CA is a P-256 CA; leaves carry the SAN and verify against it", () => {
    const caCert = new X509Certificate(ca.certPem);
    expect(caCert.ca).toBe(true);
    expect(caCert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    for (const host of ["api.github.com", "a.b.example.com", "127.0.0.1"]) {
      const leaf = new X509Certificate(leaves.mint(host));
      expect(leaf.verify(caCert.publicKey)).toBe(true);
      expect(leaf.checkIssued(caCert)).toBe(true);
      expect(leaf.ca).toBe(false);
      expect(host.includes("github") ? leaf.checkHost(host) : true).toBeTruthy();
      if (host === "127.0.0.1") expect(leaf.checkIP(host)).toBe(host);
      else expect(leaf.checkHost(host)).toBe(host);
      expect(leaf.checkHost(`evil.${host}`)).toBeUndefined();
    }
  });

  test("OpenSSL accepts the chain in strict mode", () => {
    const dir = mkdtempSync(join(tmpdir(), "av-certs-"));
    try {
      writeFileSync(join(dir, "ca.pem"), ca.certPem);
      writeFileSync(join(dir, "leaf.pem"), leaves.mint("api.github.com"));
      const result = Bun.spawnSync(["openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", join(dir, "ca.pem"), join(dir, "leaf.pem")]);
      expect(result.stdout.toString()).toContain("OK");
      expect(result.exitCode).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("contexts are cached per name", () => {
    expect(leaves.contextFor("x.example.com")).toBe(leaves.contextFor("X.example.com"));
    expect(leaves.contextFor("x.example.com")).not.toBe(leaves.contextFor("y.example.com"));
  });
});
