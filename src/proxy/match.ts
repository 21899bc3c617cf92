// Service matching (DESIGN "Services"): exact host over wildcard, port-specific over port-less,
// longest path prefix, then declaration order. Matching is exact and case-insensitive: a wildcard
// covers exactly one label, and `api.github.com.` or `api.github.com.evil.io` never match
// `api.github.com`. Compiled once per vault change, not per request.
import { type HostPattern, parseHostPattern } from "../vault/host.ts";
import { pathReadings } from "../vault/policy.ts";
import { type Service } from "../vault/service.schema.ts";

interface Compiled {
  readonly service: Service;
  readonly pattern: HostPattern;
  readonly rank: readonly number[];
}

function hostMatches(pattern: HostPattern, host: string): boolean {
  if (pattern.kind === "exact") return host === pattern.host;
  const suffix = `.${pattern.host}`;
  if (!host.endsWith(suffix)) return false;
  const label = host.slice(0, -suffix.length);
  return label.length > 0 && !label.includes(".");
}

/**
 * Case folded the way a server that compares paths without case may: beyond ASCII, `ſ` (U+017F)
 * reads as `s` and the Kelvin sign as `k` (upper then lower case maps both), so `/ſecrets` is
 * under `/secrets/` to such a server.
 */
function unicodeFold(text: string): string {
  return text.toUpperCase().toLowerCase();
}

/** A reading as written, folded, and with its percent escapes decoded as UTF-8 and folded (`/%C5%BFecrets`). */
function foldings(reading: string): string[] {
  const out = [reading.toLowerCase(), unicodeFold(reading)];
  if (reading.includes("%")) {
    try {
      out.push(unicodeFold(decodeURIComponent(reading)));
    } catch {
      // not UTF-8 escapes: the readings above stand
    }
  }
  return out;
}

export class ServiceMatcher {
  private readonly compiled: Compiled[];
  /** The path-prefixed services, longest prefix first, their prefixes folded: what carvedOut reads. */
  private readonly prefixed: readonly (Compiled & { readonly folded: string })[];

  constructor(services: readonly Service[]) {
    const compiled: Compiled[] = [];
    services.forEach((service, order) => {
      const pattern = parseHostPattern(service.host);
      if (typeof pattern === "string") return; // the schema refuses these; never match one
      compiled.push({ service, pattern, rank: [pattern.kind === "exact" ? 0 : 1, pattern.port === null ? 1 : 0, -(pattern.pathPrefix?.length ?? 0), order] });
    });
    this.compiled = compiled.sort((a, b) => {
      for (let i = 0; i < a.rank.length; i++) if (a.rank[i] !== b.rank[i]) return a.rank[i]! - b.rank[i]!;
      return 0;
    });
    this.prefixed = compiled
      .filter((c) => c.pattern.pathPrefix !== null)
      .map((c) => ({ ...c, folded: unicodeFold(c.pattern.pathPrefix!) }))
      .sort((a, b) => b.folded.length - a.folded.length);
  }

  /** The service for a request, enabled or not; null when none matches. */
  match(host: string, port: number, path: string): Service | null {
    const h = host.toLowerCase();
    // In every way a server may read it (dot segments resolved, unreserved escapes decoded, `;`
    // parameters cut, %2F as a separator), like the policy: `/api/../admin` and `/api/..;/admin`
    // are `/admin` upstream and must not take the credential of `host/api/*`.
    let readings: string[] | null = null;
    for (const { service, pattern } of this.compiled) {
      if (pattern.port !== null && pattern.port !== port) continue;
      if (!hostMatches(pattern, h)) continue;
      const prefix = pattern.pathPrefix;
      if (prefix !== null && !(readings ??= pathReadings(path)).every((reading) => reading.startsWith(prefix))) continue;
      return service;
    }
    return null;
  }

  /**
   * A path-prefixed service with a longer prefix than `chosen`'s that some reading of `path` falls
   * under, in any case, though `match` did not give it the request: a server that ignores case or
   * `;` parameters reads `/Admin/users` or `/admin;x/users` as inside `api.example.com/admin/*`,
   * so the broader service's grant, rules and key would reach a path the operator carved out (red
   * team, session 7). Whatever its rank: beside `api.example.com:443` (a port outranks a path
   * prefix) a port-less carve-out never matched, not even `/admin/users`. Such a request is
   * refused rather than given to either. Per request, so nothing is read without a prefixed service.
   */
  carvedOut(host: string, port: number, path: string, chosen: Service | null): Service | null {
    // With no broader service, nothing is injected either way.
    if (chosen === null || this.prefixed.length === 0) return null;
    const h = host.toLowerCase();
    const chosenPrefix = this.prefixed.find((c) => c.service === chosen)?.folded.length ?? 0;
    let readings: string[] | null = null;
    for (const { service, pattern, folded } of this.prefixed) {
      if (folded.length <= chosenPrefix) break;
      if ((pattern.port !== null && pattern.port !== port) || !hostMatches(pattern, h)) continue;
      readings ??= pathReadings(path).flatMap(foldings);
      if (readings.some((reading) => reading.startsWith(folded))) return service;
    }
    return null;
  }

  /** Whether any service could match some path on this host and port: such tunnels are intercepted. */
  coversHost(host: string, port: number): boolean {
    return this.servicesCovering(host, port).length > 0;
  }

  /** The services, enabled or not, that could match some path on this host and port. */
  servicesCovering(host: string, port: number): Service[] {
    const h = host.toLowerCase();
    return this.compiled.filter(({ pattern }) => (pattern.port === null || pattern.port === port) && hostMatches(pattern, h)).map((c) => c.service);
  }
}
