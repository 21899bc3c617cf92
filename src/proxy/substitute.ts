// Placeholders to values in a request body (steps/placeholders.ts decides which): a whole body at
// once, or a streamed one with a hold-back, so a placeholder cut across two reads is still found.
// Bytes only, and no copy of a piece that holds no placeholder: a streamed upload of a GiB costs
// what it did before. Placeholders are ASCII; a value goes in as its UTF-8 bytes.
import { type Substitution } from "./flow.ts";

interface Needle {
  readonly from: Buffer;
  readonly to: Buffer;
}

const needles = (substitutions: readonly Substitution[]): Needle[] => substitutions.map((s) => ({ from: Buffer.from(s.placeholder, "latin1"), to: Buffer.from(s.value, "utf8") }));

/** Every placeholder in `bytes` replaced; `bytes` itself when there is none. */
function replaceIn(bytes: Buffer, list: readonly Needle[]): Buffer {
  let current = bytes;
  for (const { from, to } of list) {
    let at = current.indexOf(from);
    if (at < 0) continue;
    const parts: Buffer[] = [];
    let start = 0;
    for (; at >= 0; at = current.indexOf(from, start)) {
      parts.push(current.subarray(start, at), to);
      start = at + from.length;
    }
    parts.push(current.subarray(start));
    current = Buffer.concat(parts);
  }
  return current;
}

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
    return replaceIn(bytes.subarray(0, cut), this.list);
  }

  end(): Buffer {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return replaceIn(rest, this.list);
  }
}
