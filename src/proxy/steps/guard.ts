// Step 5: the exfiltration guard, on the request line and headers (forward.ts does the body). A
// request that carries the value of any credential of the vault, in any of the forms secrets.ts
// knows, is refused with 403 credential_exfiltration naming the key (never the value) before any
// byte goes upstream. It runs after the agent's own auth headers are stripped and before inject,
// so the one injection the matched service makes is not counted against it.
//
// The URL and every header are searched as one text with nothing between them, so a value split
// across two headers (or a header and the path) is whole there, joined to the end of what this
// principal last sent this host, so a value split across consecutive requests is too.
import { findSecret, longestSpelling, type Pattern } from "../secrets.ts";
import { answer, type Flow } from "../flow.ts";
import { type StepContext } from "../pipeline.ts";
import { tailKey } from "../tails.ts";

const FORM_NAMES: Record<string, string> = { raw: "as is", base64: "base64-encoded", base64url: "base64url-encoded", hex: "hex-encoded", base32: "base32-encoded" };

export function refuseExfiltration(flow: Flow, hit: Pattern, where: string): void {
  flow.blocked = hit.key;
  answer(flow, 403, "credential_exfiltration", `the request carries the value of credential ${hit.key} (${FORM_NAMES[hit.form] ?? hit.form}, in ${where}); nothing was sent to ${flow.host}`, { credential: hit.key });
}

/** The request line and headers as the guard reads them: host, path, then each name and value. */
export function requestText(flow: Flow): string {
  const parts = [flow.host, flow.path];
  for (const [name, value] of Object.entries(flow.headers)) {
    if (value === undefined) continue;
    parts.push(name, Array.isArray(value) ? value.join("") : value);
  }
  return parts.join("");
}

export function guardRequest(flow: Flow, ctx: StepContext): void {
  const vault = flow.vault;
  if (!vault?.settings.guard) return;
  const patterns = ctx.secrets(vault);
  if (patterns.length === 0) return;
  const key = tailKey(flow.principal?.id, flow.host, flow.port);
  const previous = ctx.tails?.get(key) ?? "";
  const text = requestText(flow);
  const hit = findSecret(previous + text, patterns);
  if (hit) return refuseExfiltration(flow, hit, whereIs(flow, patterns, previous));
  const keep = longestSpelling(patterns);
  flow.guardPrefix = (previous + text).slice(-keep);
  ctx.tails?.set(key, flow.guardPrefix, keep);
}

/** Where a value is, for the message: the URL, one header, or split. */
function whereIs(flow: Flow, patterns: readonly Pattern[], previous: string): string {
  if (findSecret(`${flow.host}${flow.path}`, patterns)) return "the URL";
  for (const [name, value] of Object.entries(flow.headers)) {
    if (value !== undefined && findSecret(`${name}: ${Array.isArray(value) ? value.join("") : value}`, patterns)) return `the ${name} header`;
  }
  if (previous && !findSecret(requestText(flow), patterns)) return "this request joined to the previous one to this host";
  return "the URL and headers, split across them";
}
