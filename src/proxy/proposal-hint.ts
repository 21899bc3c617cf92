// The `proposal_hint` of a 403 host_not_allowed: a proposal for the host, ready to POST once the
// agent fills in a message. A host the catalog knows gets its auth type and key name.
import { CATALOG } from "../vault/catalog.ts";
import { credentialKeysOf } from "../vault/service.schema.ts";
import { ServiceMatcher } from "./match.ts";

const catalogMatcher = new ServiceMatcher(CATALOG.map((e) => ({ name: e.name, host: e.host, auth: e.auth, enabled: true, created_at: "1970-01-01T00:00:00.000Z" })));

function guessName(host: string): string {
  const labels = host
    .toLowerCase()
    .split(".")
    .filter((l) => !["api", "www", "com", "io", "dev", "app", "net", "org", "co", "ai"].includes(l));
  const name = (labels[labels.length - 1] ?? host).replace(/[^a-z0-9_-]/g, "-").slice(0, 60);
  return /^[a-z0-9]/.test(name) ? name : `svc-${name}`.slice(0, 64);
}

export function proposalHintFor(host: string, port: number): Record<string, unknown> {
  const known = catalogMatcher.match(host, port, "/");
  const entry = known ? CATALOG.find((e) => e.name === known.name) : undefined;
  const name = entry?.name ?? guessName(host);
  const stem = name.toUpperCase().replace(/[^A-Z0-9]/g, "_");
  // Credential keys start with a letter: `3scale` becomes SVC_3SCALE_API_KEY.
  const key = `${/^[A-Z]/.test(stem) ? "" : "SVC_"}${stem}_API_KEY`;
  const auth = entry?.auth ?? { type: "bearer", token: key };
  const keys = entry ? credentialKeysOf(entry.auth) : [key];
  return {
    services: [{ action: "set", name, host: port === 443 ? host : `${host}:${port}`, auth }],
    credentials: keys.map((k) => ({ action: "set", key: k, description: `credential for ${entry?.title ?? host}`, ...(entry ? { obtain: entry.obtain } : {}) })),
    message: "",
  };
}
