// What approving a proposal would do, computed from the vault's own records and the proposal's
// validated fields (names, hosts, auth, keys), never from the agent's free text. The CLI and the
// TUI show these lines after the agent's message, warnings last, so whatever the agent wrote
// (or drew with terminal tricks) is followed by the truth. Pure: no I/O, no values.
import { type Proposal } from "./proposal.schema.ts";
import { formatHostPattern, type HostPattern, parseHostPattern } from "./host.ts";
import { type Auth, credentialKeysOf, type Service } from "./service.schema.ts";
import { type VaultRecord } from "./state.schema.ts";

export interface ProposalEffects {
  /** One line per change, e.g. `service fake: host api.fake.test → evil.example.com`. */
  readonly effects: readonly string[];
  /** What needs the reviewer's attention: a secret going somewhere new, a value replaced or lost. */
  readonly warnings: readonly string[];
}

/** The auth of a service in a few words: its type, where it puts the credential, which keys. */
export function describeAuth(auth: Auth): string {
  switch (auth.type) {
    case "bearer":
      return `bearer, ${auth.token}`;
    case "basic":
      return `basic, ${auth.password ? `${auth.username}:${auth.password}` : auth.username}`;
    case "api-key":
      return `api-key in ${auth.header}${auth.prefix ? ` after "${auth.prefix}"` : ""}, ${auth.key}`;
    case "custom":
      // The templates themselves: the text around a key is the agent's choice as much as the names.
      // The keys first: a line cut at the pane's width still says what is sent.
      return `custom headers, ${credentialKeysOf(auth).join(", ")}: ${Object.entries(auth.headers)
        .map(([name, template]) => `${name}: ${JSON.stringify(template)}`)
        .join(", ")}`;
    case "query":
      return `query ?${auth.param}=, ${auth.key}`;
    case "passthrough":
      return "passthrough: the host is allowed, nothing injected";
    case "aws-sigv4":
      return `aws-sigv4 (signed by the proxy${auth.region ? `, ${auth.region}` : ""}${auth.aws_service ? `, ${auth.aws_service}` : ""}), ${credentialKeysOf(auth).join(", ")}`;
  }
}

function list(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

/** Hosts that `key` is sent to today, by the services of the vault that name it. */
function hostsOf(services: readonly Service[], key: string): string[] {
  return [...new Set(services.filter((s) => credentialKeysOf(s.auth).includes(key)).map((s) => s.host))];
}

/** Equal auth settings, whatever the order of their fields (custom headers keep the author's order). */
export function sameAuth(a: Auth, b: Auth): boolean {
  const canonical = (auth: Auth) =>
    JSON.stringify(auth, (_, value: unknown) =>
      value !== null && typeof value === "object" && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : value,
    );
  return canonical(a) === canonical(b);
}

/** Whether two host patterns can match one request (host, port and path alike). */
function overlap(a: HostPattern, b: HostPattern): boolean {
  const inDomain = (exact: string, wildcard: string) => exact.endsWith(`.${wildcard}`) && !exact.slice(0, -wildcard.length - 1).includes(".");
  const hosts = a.kind === b.kind ? a.host === b.host : a.kind === "exact" ? inDomain(a.host, b.host) : inDomain(b.host, a.host);
  const ports = a.port === null || b.port === null || a.port === b.port;
  const paths = a.pathPrefix === null || b.pathPrefix === null || a.pathPrefix.startsWith(b.pathPrefix) || b.pathPrefix.startsWith(a.pathPrefix);
  return hosts && ports && paths;
}

/** The proxy's order of precedence (src/proxy/match.ts): exact host, a port, the longer path prefix, then the earlier service. */
function rankOf(pattern: HostPattern, order: number): number[] {
  return [pattern.kind === "exact" ? 0 : 1, pattern.port === null ? 1 : 0, -(pattern.pathPrefix?.length ?? 0), order];
}

function outranks(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/**
 * A path-prefixed service with no port beside one of the same host with a port and no prefix: the
 * port outranks the prefix, so on that port the prefix never wins, and requests under it are
 * refused as a carve-out rather than sent with either key (src/proxy/match.ts). Said when either
 * is added, with the spelling that works.
 */
export function shadowedPrefixes(services: readonly { name: string; host: string }[], changed: string): string[] {
  const out: string[] = [];
  const parsed = services.map((s) => ({ name: s.name, host: s.host, pattern: parseHostPattern(s.host) }));
  for (const prefixed of parsed) {
    if (typeof prefixed.pattern === "string" || prefixed.pattern.pathPrefix === null || prefixed.pattern.port !== null) continue;
    for (const ported of parsed) {
      if (ported === prefixed || (prefixed.name !== changed && ported.name !== changed)) continue;
      const p = ported.pattern;
      if (typeof p === "string" || p.port === null || p.pathPrefix !== null || p.kind !== prefixed.pattern.kind || p.host !== prefixed.pattern.host) continue;
      out.push(
        `service ${prefixed.name} (${prefixed.host}) has no port and service ${ported.name} (${ported.host}) has one, which outranks a path prefix: requests under ${prefixed.pattern.pathPrefix} to port ${p.port} are refused, not sent with either key; give ${prefixed.name} the port too (${formatHostPattern({ ...prefixed.pattern, port: p.port })})`,
      );
    }
  }
  return out;
}

/**
 * A service the proposal adds or changes that would win requests another service of the vault
 * gets today, by the matcher's precedence (`api.openai.com:443` over `api.openai.com`, a path
 * prefix, an exact host under a wildcard): the effects said only "adds host", and every request
 * to the host then carried the agent's own key (red team, session 7, MEDIUM).
 */
function takeovers(vault: VaultRecord, proposal: Proposal): string[] {
  const changed = new Set(proposal.services.map((s) => s.name));
  // The services as they would be, in the order the matcher breaks ties by.
  const after: { name: string; host: string; auth: Auth }[] = vault.services.map((s) => ({ name: s.name, host: s.host, auth: s.auth }));
  for (const change of proposal.services) {
    const at = after.findIndex((s) => s.name === change.name);
    if (change.action === "delete") {
      if (at !== -1) after.splice(at, 1);
    } else if (at !== -1) after[at] = { name: change.name, host: change.host, auth: change.auth };
    else after.push({ name: change.name, host: change.host, auth: change.auth });
  }
  const out: string[] = [];
  for (const [winnerOrder, winner] of after.entries()) {
    if (!changed.has(winner.name)) continue;
    const wp = parseHostPattern(winner.host);
    if (typeof wp === "string") continue;
    for (const [loserOrder, loser] of after.entries()) {
      if (changed.has(loser.name)) continue;
      const lp = parseHostPattern(loser.host);
      if (typeof lp === "string" || !overlap(wp, lp)) continue;
      if (!outranks(rankOf(wp, winnerOrder), rankOf(lp, loserOrder))) continue;
      const theirs = credentialKeysOf(loser.auth);
      const ours = credentialKeysOf(winner.auth);
      const carries = winner.auth.type === "passthrough" ? "nothing injected" : ours.length > 0 ? list(ours) : "no credential";
      out.push(
        `service ${winner.name} (${winner.host}) would take over requests that service ${loser.name} (${loser.host}) gets today${theirs.length > 0 ? `, which carry ${list(theirs)}` : ""}: they would carry ${carries} instead`,
      );
    }
  }
  return out;
}

export function proposalEffects(vault: VaultRecord, proposal: Proposal): ProposalEffects {
  const effects: string[] = [];
  const warnings: string[] = [];
  const setKeys = new Set(proposal.credentials.filter((c) => c.action === "set").map((c) => c.key));
  const deletedKeys = new Set(proposal.credentials.filter((c) => c.action === "delete").map((c) => c.key));
  const changedServices = new Set(proposal.services.map((s) => s.name));

  for (const change of proposal.services) {
    const existing = vault.services.find((s) => s.name === change.name);
    const subject = `service ${change.name}`;
    if (change.action === "delete") {
      if (!existing) effects.push(`${subject}: not in the vault, nothing to remove`);
      else {
        const keys = credentialKeysOf(existing.auth);
        effects.push(`${subject}: removed (host ${existing.host}${keys.length > 0 ? `; stops sending ${list(keys)}` : ""})`);
      }
      continue;
    }
    const enabled = change.enabled ?? true;
    if (!existing) {
      effects.push(`${subject}: adds host ${change.host} (${describeAuth(change.auth)})${enabled ? "" : ", disabled"}`);
    } else {
      const before = effects.length;
      if (existing.host !== change.host) effects.push(`${subject}: host ${existing.host} → ${change.host}`);
      if (!sameAuth(existing.auth, change.auth)) effects.push(`${subject}: auth ${describeAuth(existing.auth)} → ${describeAuth(change.auth)}`);
      if (existing.enabled !== enabled) effects.push(`${subject}: ${existing.enabled ? "enabled → disabled" : "disabled → enabled"}`);
      if ((existing.description ?? "") !== (change.description ?? "")) effects.push(`${subject}: description ${change.description === undefined ? "removed" : "changed"}`);
      if (effects.length === before) effects.push(`${subject}: unchanged`);
    }
    // The check that matters most: a credential the vault already holds, sent to a host it does not
    // go to today. A value the proposal replaces is the reviewer's new one, warned about below.
    for (const key of credentialKeysOf(change.auth)) {
      if (!(key in vault.credentials) || setKeys.has(key) || deletedKeys.has(key)) continue;
      const today = hostsOf(vault.services, key);
      if (today.includes(change.host)) continue;
      warnings.push(`${key}, a credential already in the vault, would be sent to ${change.host}; ${today.length > 0 ? `today it goes only to ${list(today)}` : "today no service sends it"}`);
    }
    // The same host, but the key placed elsewhere in the request (a second header, the query, a
    // basic username), where the service may log or echo it (red team, session 7).
    if (existing && existing.host === change.host && !sameAuth(existing.auth, change.auth)) {
      const kept = credentialKeysOf(change.auth).filter((key) => key in vault.credentials && !setKeys.has(key) && credentialKeysOf(existing.auth).includes(key));
      if (kept.length > 0)
        warnings.push(`${subject} would place ${list(kept)} differently in requests to ${change.host} (${existing.auth.type} → ${change.auth.type}): check where the auth line above puts it`);
    }
  }
  warnings.push(...takeovers(vault, proposal));

  // Where each value goes once the proposal is applied: a value the reviewer is asked to paste is
  // shown with its hosts, so a bait ("your OpenAI key") for a service on another host is visible.
  const after = new Map(vault.services.map((s) => [s.name, { host: s.host, auth: s.auth }] as const));
  for (const change of proposal.services) {
    if (change.action === "delete") after.delete(change.name);
    else after.set(change.name, { host: change.host, auth: change.auth });
  }
  const hostsAfter = (key: string) => [...new Set([...after.values()].filter((s) => credentialKeysOf(s.auth).includes(key)).map((s) => s.host))];

  for (const slot of proposal.credentials) {
    const existing = vault.credentials[slot.key];
    const subject = `credential ${slot.key}`;
    const users = vault.services.filter((s) => credentialKeysOf(s.auth).includes(slot.key)).map((s) => s.name);
    if (slot.action === "delete") {
      if (!existing) {
        effects.push(`${subject}: not in the vault, nothing to delete`);
        continue;
      }
      effects.push(`${subject}: deleted`);
      const stillUsing = users.filter((name) => !changedServices.has(name));
      warnings.push(`${subject} is deleted and its value is gone for good${stillUsing.length > 0 ? `; service ${list(stillUsing)} still names it and will fail` : ""}`);
      continue;
    }
    const source =
      slot.type === "oauth"
        ? "connect or paste it after approval"
        : slot.type === "source"
          ? `fetched from ${slot.source ?? "?"} on use`
          : slot.sealed_value !== undefined
            ? "value chosen by the agent"
            : "you type the value";
    const hosts = hostsAfter(slot.key);
    const sentTo = hosts.length > 0 ? `; sent to ${list(hosts)}` : "; no service sends it";
    // Where an OAuth slot's tokens and client secret would go, and where the browser: the agent's
    // choice, so it is spelled out, and connect and paste use it only for a known provider
    // (src/oauth/credential.ts).
    const o = slot.type === "oauth" ? slot.oauth : undefined;
    // Every setting the slot carries is the agent's: the client (whose consent screen the user
    // sees), the scopes asked for, whether a client secret is sent (red team, session 7).
    const urls = o
      ? `; token URL ${o.token_url}${o.authorization_url ? `, sign-in at ${o.authorization_url}` : ""}${o.client_id ? `, client id ${o.client_id}` : ""}${o.scopes ? `, scopes "${o.scopes}"` : ""}${o.token_auth_method ? `, token auth ${o.token_auth_method}` : ""}`
      : "";
    if (urls)
      warnings.push(`${subject}: its OAuth URLs are the agent's choice; connect and paste use them only if they are a known provider's, else name the provider (--provider) or pass the URL yourself`);
    if (!existing) {
      effects.push(`${subject}: new (${slot.type}; ${source}${urls})${sentTo}`);
      continue;
    }
    effects.push(`${subject}: replaces the current value${existing.type !== slot.type ? ` (${existing.type} → ${slot.type})` : ""} (${source}${urls})${sentTo}`);
    // A source the agent chose decides what is sent: say so whatever the key held before.
    if (slot.type === "source") warnings.push(`${subject}: its value would come from ${slot.source ?? "?"}, a source the agent chose; check it names the secret you mean`);
    const usedBy = users.length > 0 ? `; used by service ${list(users)}` : "";
    warnings.push(
      slot.sealed_value !== undefined ? `${subject}: the current value is replaced by one the agent chose (so the agent knows it)${usedBy}` : `${subject}: the current value is replaced${usedBy}`,
    );
  }
  return { effects, warnings };
}
