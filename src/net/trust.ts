// Which certificate authorities upstream TLS trusts: the roots Bun ships, the system's own bundle
// (a CA the user installed system-wide: system-roots.ts), plus the PEM file named by
// AGENT_VAULT_UPSTREAM_CA (operator intent, e.g. a corporate proxy's CA). Shared by the proxy's
// upstream connections and the OAuth token client, so both verify against the same set.
import { readFileSync } from "node:fs";
import tls, { rootCertificates } from "node:tls";
import { AgentVaultError } from "../shared/errors.ts";
import { systemRootsBeyond } from "./system-roots.ts";

/** The CA certificates (PEM) to verify upstreams with; an unreadable AGENT_VAULT_UPSTREAM_CA is an error, not a silent fallback. */
export function upstreamTrust(env: NodeJS.ProcessEnv = process.env): string[] {
  const file = env.AGENT_VAULT_UPSTREAM_CA;
  const roots = [...rootCertificates, ...systemRootsBeyond(rootCertificates)];
  if (!file) return roots;
  try {
    return [...roots, readFileSync(file, "utf8")];
  } catch {
    throw new AgentVaultError("invalid_argument", `AGENT_VAULT_UPSTREAM_CA: cannot read ${file.slice(0, 300)}`);
  }
}

/**
 * One TLS context for a trust list, made once: handing `ca` to every tls.connect parses every
 * certificate again (about 0.9 ms a connection for ~170 roots, against 0.05 ms with a context).
 */
export function trustContext(trust: readonly string[]): tls.SecureContext {
  return tls.createSecureContext({ ca: [...trust] });
}
