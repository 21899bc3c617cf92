// Step 5: the exfiltration guard, on the request line and headers (request-body.ts does the body). A
// request that carries the value of any credential of the vault, in any of the forms secrets.ts
// knows, is refused with 403 credential_exfiltration naming the key (never the value) before any
// byte goes upstream. It runs after the agent's own auth headers are stripped and before inject,
// so the one injection the matched service makes is not counted against it.
//
// A value cut in pieces is looked for too: when the first 8 characters of a value's form stand
// anywhere (or its first 4 end a field: the path, a header value, later the body) without the
// rest, the rest is looked for in every field of this request and of the next one this principal
// sends this host (tails.ts).
import { findSecret, guardScan, openRests, type Pattern } from "../secrets.ts";
import { answer, type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";
import { tailKey } from "../tails.ts";

const FORM_NAMES: Record<string, string> = { raw: "as is", base64: "base64-encoded", base64url: "base64url-encoded", hex: "hex-encoded", base32: "base32-encoded" };

export function refuseExfiltration(flow: Flow, hit: Pattern, where: string): void {
  flow.blocked = hit.key;
  answer(flow, "credential_exfiltration", `the request carries the value of credential ${hit.key} (${FORM_NAMES[hit.form] ?? hit.form}, in ${where}); nothing was sent to ${flow.host}`, {
    credential: hit.key,
  });
}

/**
 * The request's fields as the guard reads them: the method (any token is one, so a value can be a
 * method, and the request line goes upstream as written), the host, the path, each header name and
 * value.
 */
function requestFields(flow: Flow): string[] {
  const fields = [flow.method, flow.host, flow.path];
  for (const [name, value] of Object.entries(flow.headers)) {
    if (value === undefined) continue;
    fields.push(name);
    for (const v of Array.isArray(value) ? value : [value]) fields.push(v);
  }
  return fields;
}

export function guardRequest(flow: Flow, ctx: StepContext): void {
  const vault = flow.vault;
  if (!vault?.settings.guard) return;
  const patterns = ctx.secrets(vault);
  if (patterns.length === 0) return;
  // One search over every field joined by a newline finds a value inside any one field.
  const fields = requestFields(flow);
  const text = fields.join("\n");
  const { hit, rests: anywhere } = guardScan(text, patterns);
  if (hit) return refuseExfiltration(flow, hit, whereIs(flow, patterns));
  // A value cut in two: the rest of one whose first piece stands in this request (anywhere, or,
  // shorter, at a field's end), or in the previous request to this host, anywhere in this one.
  const key = tailKey(flow.principal?.id, flow.host, flow.port);
  const open = [...anywhere, ...fields.flatMap((field) => openRests(field, patterns))];
  const rests = [...(ctx.tails?.get(key) ?? []), ...open];
  const joined = rests.length > 0 ? findSecret(text, rests) : null;
  if (joined) return refuseExfiltration(flow, joined, "pieces across fields of this request or the previous one to this host");
  flow.guardRests = rests;
  ctx.tails?.set(key, open);
}

/** Where a value is, for the message: the URL or one header. */
function whereIs(flow: Flow, patterns: readonly Pattern[]): string {
  if (findSecret(flow.method, patterns)) return "the method";
  if (findSecret(`${flow.host}\n${flow.path}`, patterns)) return "the URL";
  for (const [name, value] of Object.entries(flow.headers)) {
    // A name that holds the value is not repeated: the message reaches the request log.
    if (findSecret(name, patterns)) return "a header's name";
    if (value !== undefined && findSecret(`${name}\n${Array.isArray(value) ? value.join("\n") : value}`, patterns)) return `the ${name} header`;
  }
  return "the headers";
}
