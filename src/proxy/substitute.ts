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
/** `"name": "` (JSON) or `name=` at the start of a form or query field, then an optional scheme. */
const FIELD_BEFORE = /(?:"([A-Za-z0-9_.-]{1,64})"\s*:\s*"|(?:^|[&?])([A-Za-z0-9_.-]{1,64})=)(?:(?:Bearer|Bot|Basic|token)(?: |%20|\+))?$/;
const CREDENTIAL_NAME = /token|key|secret|auth|passw|credential|bearer|signature/i;

/** Whether a header or field name says it carries a credential (`Authorization`, `X-Api-Key`, `token`). */
export function isCredentialName(name: string): boolean {
  return CREDENTIAL_NAME.test(name);
}

/** Whether the text just before a placeholder makes it a credential field's value. */
export function isCredentialField(before: string): boolean {
  const match = FIELD_BEFORE.exec(before);
  return match !== null && CREDENTIAL_NAME.test(match[1] ?? match[2] ?? "");
}

/**
 * Every placeholder in `bytes` that is a credential field's value replaced; `bytes` itself when
 * there is none. `prefix` is what came before `bytes` (a streamed body's earlier reads).
 */
function replaceIn(bytes: Buffer, list: readonly Needle[], prefix: Buffer = EMPTY): Buffer {
  let current = bytes;
  for (const { from, to } of list) {
    let at = current.indexOf(from);
    if (at < 0) continue;
    const parts: Buffer[] = [];
    let start = 0;
    for (; at >= 0; at = current.indexOf(from, at + from.length)) {
      const near = current.subarray(Math.max(0, at - CONTEXT_BYTES), at);
      const before = (at < CONTEXT_BYTES ? Buffer.concat([prefix.subarray(Math.max(0, prefix.length - (CONTEXT_BYTES - at))), near]) : near).toString("latin1");
      if (!isCredentialField(before)) continue;
      parts.push(current.subarray(start, at), to);
      start = at + from.length;
    }
    if (parts.length === 0) continue;
    parts.push(current.subarray(start));
    current = Buffer.concat(parts);
  }
  return current;
}

const EMPTY = Buffer.alloc(0);

export function substituteWhole(body: Buffer, substitutions: readonly Substitution[]): Buffer {
  return substitutions.length === 0 ? body : replaceIn(body, needles(substitutions));
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

  constructor(substitutions: readonly Substitution[]) {
    this.list = needles(substitutions);
    this.hold = Math.max(0, ...this.list.map((n) => n.from.length - 1));
  }

  push(chunk: Buffer): Buffer {
    const bytes = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let cut = Math.max(0, bytes.length - this.hold);
    for (let moved = true; moved; ) {
      moved = false;
      for (const { from } of this.list) {
        // Only a placeholder that starts in the last `hold` bytes before the cut can straddle it.
        for (let at = bytes.indexOf(from, Math.max(0, cut - from.length + 1)); at >= 0 && at < cut; at = bytes.indexOf(from, at + 1)) {
          if (at + from.length > cut) {
            cut = at + from.length;
            moved = true;
          }
        }
      }
    }
    // The held tail is copied: `chunk` belongs to the reader and may be reused.
    this.pending = Buffer.from(bytes.subarray(cut));
    const out = replaceIn(bytes.subarray(0, cut), this.list, this.context);
    // The context runs across reads: a short read must not drop the name an earlier one began.
    const emitted = bytes.subarray(0, cut);
    this.context = emitted.length >= CONTEXT_BYTES ? Buffer.from(emitted.subarray(emitted.length - CONTEXT_BYTES)) : Buffer.concat([this.context, emitted]).subarray(-CONTEXT_BYTES);
    return out;
  }

  end(): Buffer {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return replaceIn(rest, this.list, this.context);
  }
}
