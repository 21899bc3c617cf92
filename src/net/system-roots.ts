// The operating system's own CA bundle, for the bundle `run` hands to agents: the roots Bun ships
// (Mozilla's) miss a CA the user installed system-wide (a corporate proxy's, a home lab's), and
// `run` replaces SSL_CERT_FILE and friends, so without these a tunnelled host that the user's
// tools trust would fail to verify for the agent. Only root-owned system paths are read (the agent
// cannot write them), only PEM certificate blocks are kept, and the size is capped.
import { readFileSync, statSync } from "node:fs";

// Debian/Ubuntu/Arch, Fedora/RHEL, openSUSE, Alpine/macOS: the first that exists wins.
const SYSTEM_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"];
const MAX_BYTES = 8 * 1024 * 1024;
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

/** The system bundle's certificates not already in `known` (compared without whitespace); [] without one. */
export function systemRootsBeyond(known: readonly string[], paths: readonly string[] = SYSTEM_BUNDLES): string[] {
  const seen = new Set(known.map((pem) => pem.replace(/\s+/g, "")));
  for (const path of paths) {
    let text: string;
    try {
      const stat = statSync(path);
      if (!stat.isFile() || stat.uid !== 0 || stat.size > MAX_BYTES) continue;
      text = readFileSync(path, "utf8");
    } catch {
      continue;
    }
    return (text.match(PEM_BLOCK) ?? []).filter((pem) => !seen.has(pem.replace(/\s+/g, "")));
  }
  return [];
}
