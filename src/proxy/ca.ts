// The CA's lifecycle: made once per data directory (at init, or on first use by a directory made
// before the proxy existed), its key sealed in the vault, its certificate written to ca.pem, and
// the bundle handed to agents (system roots plus ours) written beside it.
import { CA_KEY_KIND, CA_KEY_SCOPE } from "../vault/sealed-kinds.ts";
import { rootCertificates } from "node:tls";
import { systemRootsBeyond } from "../net/system-roots.ts";
import { PUBLIC_MODE, readFileNoFollow, writeFileAtomic } from "../shared/files.ts";
import { type VaultStore } from "../vault/vault.ts";
import { type CertificateAuthority, createCertificateAuthority } from "./certs.ts";

export async function ensureCertificateAuthority(store: VaultStore): Promise<CertificateAuthority> {
  let ca = store.read().ca;
  if (!ca) {
    ca = await store.update((body) => {
      if (!body.ca) {
        const made = createCertificateAuthority();
        body.ca = { cert_pem: made.certPem, key: store.sealValue(CA_KEY_KIND, CA_KEY_SCOPE, "ca", made.keyPem) };
      }
      return body.ca;
    });
  }
  const authority = { certPem: ca.cert_pem, keyPem: store.openValue(CA_KEY_KIND, CA_KEY_SCOPE, "ca", ca.key) };
  // Public (0644): agents read them. Written only under their own names, never through a link.
  writeIfChanged(store.paths.caCert, authority.certPem, PUBLIC_MODE);
  // Bun's roots, the system's own additions (src/net/system-roots.ts), then ours.
  const roots = [...rootCertificates, ...systemRootsBeyond(rootCertificates)];
  writeIfChanged(store.paths.caBundle, `${roots.join("\n")}\n${authority.certPem}`, PUBLIC_MODE);
  return authority;
}

function writeIfChanged(path: string, text: string, mode: number): void {
  try {
    if (readFileNoFollow(path)?.toString("utf8") === text) return;
  } catch {
    // a link or a special file where ours belongs: replaced by the rename below
  }
  writeFileAtomic(path, Buffer.from(text), mode);
}
