// Placeholders to values in a request body, the query or a WebSocket message (steps/placeholders.ts
// decides which): a whole body at once, or a streamed one with a hold-back, so a placeholder cut
// across two reads is still found. Bytes only, and no copy of a piece that holds no placeholder: a
// streamed upload of a GiB costs what it did before. Placeholders are ASCII; a value goes in as its
// UTF-8 bytes.
//
// Only where a credential goes: as the value of a credential-named field, `"token": "PH"` in JSON
// (Discord's gateway identify) or `token=PH` in a form or a query (Slack's Web API), optionally
// after `Bearer `. A placeholder anywhere else in a body (a gist's content, an issue, a message)
// stays as it is: the service would store the real value where the agent can read it back through
// another host that is tunnelled unscrubbed (gist.githubusercontent.com), which would hand the agent
// the key.
import { type Substitution } from "./flow.ts";

interface Needle {
  readonly from: Buffer;
  readonly to: Buffer;
}

const needles = (substitutions: readonly Substitution[]): Needle[] => substitutions.map((s) => ({ from: Buffer.from(s.placeholder, "latin1"), to: Buffer.from(s.value, "utf8") }));

/** How far back the field name before a placeholder is looked for. */
const CONTEXT_BYTES = 96;

/**
 * How a body or message is written, which decides what a field is: `json` (a key in an object),
 * `form` (`name=value&…`, also the query), or `none` (multipart, text, anything else: no field).
 * A field of one syntax written inside a value of the other (`"content": "x&token=PH"` in JSON,
 * `body={"token":"PH"}` in a form) is content, not a field: a service stores it (red team: a gist
 * whose content held `&token=PH` was stored with the real token, readable unscrubbed).
 */
export type FieldSyntax = "json" | "form" | "none";

/** `"name": "` right after `{` or `,` (an unescaped quote cannot stand inside a string), then an optional scheme. */
const JSON_BEFORE = /(?:^|[{,])\s*"([A-Za-z0-9_.-]{1,64})"\s*:\s*"(?:(?:Bearer|Bot|Basic|token) )?$/;
/** `name=` at the start of a form or query field (`&` or the start), then an optional scheme. */
const FORM_BEFORE = /(?:^|&)([A-Za-z0-9_.-]{1,64})=(?:(?:Bearer|Bot|Basic|token)(?:%20|\+))?$/;

/**
 * Words of a name that say it carries a credential, whole words only (`monkey`, `keywords` and
 * `X-Author` do not): the name is split at non-alphanumerics and camelCase humps.
 */
const CREDENTIAL_WORDS = new Set([
  "token",
  "key",
  "apikey",
  "secret",
  "auth",
  "authorization",
  "password",
  "passwd",
  "passphrase",
  "credential",
  "credentials",
  "bearer",
  "signature",
  "accesstoken",
  "apitoken",
  "authtoken",
  "privatetoken",
  "refreshtoken",
  "sessiontoken",
  "idtoken",
  "clientsecret",
  "secretkey",
  "accesskey",
  "apisecret",
]);
/** Named like a credential but not one, and kept by services where it may be read back. */
const NOT_CREDENTIALS = new Set(["idempotency-key", "sec-websocket-key"]);

/** Whether a header or field name says it carries a credential (`Authorization`, `X-Api-Key`, `access_token`). */
export function isCredentialName(name: string): boolean {
  if (NOT_CREDENTIALS.has(name.toLowerCase())) return false;
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z0-9]+/);
  return words.some((word) => CREDENTIAL_WORDS.has(word));
}

/** Whether the text just before a placeholder makes it a credential field's value, in `syntax`. */
export function isCredentialField(before: string, syntax: FieldSyntax): boolean {
  if (syntax === "none") return false;
  const match = (syntax === "json" ? JSON_BEFORE : FORM_BEFORE).exec(before);
  return match !== null && isCredentialName(match[1]!);
}

/** Whether the byte after a placeholder ends the field's value: the whole value is the placeholder. */
function endsValue(next: number | undefined, syntax: FieldSyntax): boolean {
  if (syntax === "json") return next === 0x22; // "
  return next === undefined || next === 0x26 || next === 0x23; // end, &, #
}

/** The syntax of a request body, from its Content-Type (or, without one, a first `{` or `[`). */
export function bodySyntax(contentType: string | undefined, body: Buffer | readonly Buffer[]): FieldSyntax {
  const type = (contentType ?? "").toLowerCase();
  if (/json/.test(type)) return "json";
  if (type.includes("application/x-www-form-urlencoded")) return "form";
  if (type.trim() !== "") return "none";
  const isSpace = (b: number) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
  // A body read in pieces: its first byte that is not white space, in whichever piece it stands.
  let first: number | undefined;
  for (const piece of Buffer.isBuffer(body) ? [body] : body) if ((first = piece.find((b) => !isSpace(b))) !== undefined) break;
  return first === 0x7b || first === 0x5b ? "json" : "form";
}

/**
 * Every placeholder in `bytes` that is a credential field's whole value replaced; `bytes` itself
 * when there is none. `prefix` is what came before `bytes` (a streamed body's earlier reads), and
 * `next` the byte after it when it has arrived (undefined at the end of the body).
 */
function replaceIn(bytes: Buffer, list: readonly Needle[], syntax: FieldSyntax, prefix: Buffer = EMPTY, next?: number): Buffer {
  if (syntax === "none") return bytes;
  let current = bytes;
  for (const { from, to } of list) {
    let at = current.indexOf(from);
    if (at < 0) continue;
    const parts: Buffer[] = [];
    let start = 0;
    for (; at >= 0; at = current.indexOf(from, at + from.length)) {
      const near = current.subarray(Math.max(0, at - CONTEXT_BYTES), at);
      const before = (at < CONTEXT_BYTES ? Buffer.concat([prefix.subarray(Math.max(0, prefix.length - (CONTEXT_BYTES - at))), near]) : near).toString("latin1");
      const end = at + from.length;
      if (!isCredentialField(before, syntax) || !endsValue(end < current.length ? current[end] : next, syntax)) continue;
      parts.push(current.subarray(start, at), to);
      start = end;
    }
    if (parts.length === 0) continue;
    parts.push(current.subarray(start));
    current = Buffer.concat(parts);
  }
  return current;
}

const EMPTY = Buffer.alloc(0);

export function substituteWhole(body: Buffer, substitutions: readonly Substitution[], syntax: FieldSyntax): Buffer {
  return substitutions.length === 0 ? body : replaceIn(body, needles(substitutions), syntax);
}

/**
 * A streamed body: everything but the last (longest placeholder - 1) bytes is replaced and sent,
 * the tail waits for the next read. A placeholder is never cut: one that starts before the tail
 * is whole in what was read, and the cut moves past it.
 */
export class StreamSubstituter {
  private pending: Buffer = Buffer.alloc(0);
  /** The last bytes already passed on, as the agent sent them: the field name may be there. */
  private context: Buffer = Buffer.alloc(0);
  private readonly list: readonly Needle[];
  private readonly hold: number;

  constructor(
    substitutions: readonly Substitution[],
    private readonly syntax: FieldSyntax,
  ) {
    this.list = needles(substitutions);
    // A placeholder is replaced only once the byte after it is known: hold its whole length.
    this.hold = Math.max(0, ...this.list.map((n) => n.from.length));
  }

  push(chunk: Buffer): Buffer {
    const bytes = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let cut = Math.max(0, bytes.length - this.hold);
    // A placeholder that reaches the cut waits whole, from its start, with the byte after it still
    // to come; one that ends before the cut has that byte in what goes now. The cut only moves
    // back, so this settles.
    for (let moved = true; moved; ) {
      moved = false;
      for (const { from } of this.list) {
        for (let at = bytes.indexOf(from, Math.max(0, cut - from.length)); at >= 0 && at < cut; at = bytes.indexOf(from, at + 1)) {
          if (at + from.length >= cut) {
            cut = at;
            moved = true;
            break;
          }
        }
      }
    }
    // The held tail is copied: `chunk` belongs to the reader and may be reused.
    this.pending = Buffer.from(bytes.subarray(cut));
    const out = replaceIn(bytes.subarray(0, cut), this.list, this.syntax, this.context, cut < bytes.length ? bytes[cut] : undefined);
    // The context runs across reads: a short read must not drop the name an earlier one began.
    const emitted = bytes.subarray(0, cut);
    this.context = emitted.length >= CONTEXT_BYTES ? Buffer.from(emitted.subarray(emitted.length - CONTEXT_BYTES)) : Buffer.concat([this.context, emitted]).subarray(-CONTEXT_BYTES);
    return out;
  }

  end(): Buffer {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return replaceIn(rest, this.list, this.syntax, this.context);
  }
}
