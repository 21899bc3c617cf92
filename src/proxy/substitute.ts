// Placeholders to values in a request body (steps/placeholders.ts decides which): a whole body at
// once, or a streamed one with a hold-back, so a placeholder cut across two reads is still found.
// Bytes only. Placeholders are ASCII, so they are matched in the latin1 view of the bytes and the
// value goes in as its UTF-8 bytes.
import { type Substitution } from "./flow.ts";

function replaceIn(text: string, substitutions: readonly Substitution[]): string {
  for (const s of substitutions) if (text.includes(s.placeholder)) text = text.replaceAll(s.placeholder, Buffer.from(s.value, "utf8").toString("latin1"));
  return text;
}

export function substituteWhole(body: Buffer, substitutions: readonly Substitution[]): Buffer {
  if (substitutions.length === 0) return body;
  const text = body.toString("latin1");
  const out = replaceIn(text, substitutions);
  return out === text ? body : Buffer.from(out, "latin1");
}

/**
 * A streamed body: everything but the last (longest placeholder - 1) bytes is replaced and sent,
 * the tail waits for the next read. A placeholder is never cut: one that starts before the tail
 * ends before it or is whole in what was read, and is replaced before anything is sent.
 */
export class StreamSubstituter {
  private pending = "";
  private readonly hold: number;

  constructor(private readonly substitutions: readonly Substitution[]) {
    this.hold = Math.max(0, ...substitutions.map((s) => s.placeholder.length - 1));
  }

  push(chunk: Buffer): Buffer {
    const text = this.pending + chunk.toString("latin1");
    // Cut where no placeholder straddles: past the end of any that starts before the cut.
    let cut = Math.max(0, text.length - this.hold);
    for (let moved = true; moved; ) {
      moved = false;
      for (const { placeholder } of this.substitutions) {
        for (let at = text.indexOf(placeholder); at >= 0 && at < cut; at = text.indexOf(placeholder, at + 1)) {
          if (at + placeholder.length > cut) {
            cut = at + placeholder.length;
            moved = true;
          }
        }
      }
    }
    this.pending = text.slice(cut);
    return Buffer.from(replaceIn(text.slice(0, cut), this.substitutions), "latin1");
  }

  end(): Buffer {
    const rest = this.pending;
    this.pending = "";
    return Buffer.from(replaceIn(rest, this.substitutions), "latin1");
  }
}
