// Host patterns of services (DESIGN "Services"): `api.example.com`, `*.example.com` (exactly one
// label), `api.example.com:8443`, `slack.com/api/*`. Parsing is pure and strict: anything that is
// not one of these forms is refused, so look-alike tricks (`api.github.com.`, `evil-*.com`, spaces,
// user-info, schemes) never become a pattern that matches more than its author meant.

export interface HostPattern {
  /** `exact`: host equals `host`; `wildcard`: host is exactly one label followed by `.host`. */
  readonly kind: "exact" | "wildcard";
  readonly host: string;
  readonly port: number | null;
  /** A path prefix without the trailing `*`, e.g. `/api/`; null for every path. */
  readonly pathPrefix: string | null;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function isValidHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split(".").every((label) => LABEL.test(label));
}

/** Parses a service host; returns an error string that names what is wrong, or the pattern. */
export function parseHostPattern(input: string): HostPattern | string {
  if (input !== input.trim() || input.length === 0) return "host must not be empty or contain spaces";
  if (input.length > 300) return "host is longer than 300 characters";
  if (/:\/\//.test(input)) return "host must not include a scheme (drop the https://)";
  if (input.includes("@")) return "host must not include user info";
  const lower = input.toLowerCase();
  const slash = lower.indexOf("/");
  const authority = slash === -1 ? lower : lower.slice(0, slash);
  const rawPath = slash === -1 ? null : lower.slice(slash);
  let pathPrefix: string | null = null;
  if (rawPath !== null) {
    const path = input.slice(slash);
    if (!/^\/[A-Za-z0-9._~!$&'()+,;=:@%/-]*\*?$/.test(path) || (path.indexOf("*") !== -1 && !path.endsWith("*"))) {
      return `path "${path}" must start with / and may end with a single *`;
    }
    pathPrefix = path.endsWith("*") ? path.slice(0, -1) : path;
    if (pathPrefix === "/") pathPrefix = null;
  }
  let hostPart = authority;
  let port: number | null = null;
  const colon = authority.lastIndexOf(":");
  if (colon !== -1) {
    const portText = authority.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      return `port "${portText}" must be a number from 1 to 65535`;
    }
    port = Number(portText);
    hostPart = authority.slice(0, colon);
  }
  if (hostPart.endsWith(".")) return "host must not end with a dot";
  if (hostPart.startsWith("*.")) {
    const suffix = hostPart.slice(2);
    if (!isValidHostname(suffix) || !suffix.includes(".")) {
      return "a wildcard host must be *. followed by a domain of at least two labels, like *.example.com";
    }
    return { kind: "wildcard", host: suffix, port, pathPrefix };
  }
  if (hostPart.includes("*")) return "* is only allowed as the whole first label, like *.example.com";
  if (!isValidHostname(hostPart)) return `"${hostPart}" is not a valid host name`;
  return { kind: "exact", host: hostPart, port, pathPrefix };
}

export function formatHostPattern(pattern: HostPattern): string {
  const host = pattern.kind === "wildcard" ? `*.${pattern.host}` : pattern.host;
  const port = pattern.port === null ? "" : `:${pattern.port}`;
  const path = pattern.pathPrefix === null ? "" : `${pattern.pathPrefix}*`;
  return `${host}${port}${path}`;
}

/** `api.example.com` matches itself; `*.example.com` matches any name below example.com (not itself). */
export function hostMatchesPattern(host: string, pattern: string): boolean {
  const h = host.toLowerCase();
  const p = pattern.toLowerCase();
  return p.startsWith("*.") ? h.endsWith(p.slice(1)) && h.length > p.length - 1 : h === p;
}
