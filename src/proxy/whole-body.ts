// Scrubbing a whole body (a small response, a refused WebSocket handshake's answer, a WebSocket
// message): its declared codings undone, and every layer its magic bytes reveal (gzip in an
// undeclared body, gzip in gzip) cleaned too. The innermost layer is scrubbed and each sniffed layer
// that changed is encoded again, so the agent gets the body in the shape it was sent, less the
// declared codings, without a value. A value left only in a lenient view (lenient-views.ts: wrapped
// base64, a character put in it, UTF-16, HTML references) cannot be replaced where it stands: such
// a body is refused whole.
import { bodyLayers, type Coding, encodeOne, sniffCoding } from "../net/codings.ts";
import { lenientViews } from "./lenient-views.ts";
import { findSecret, type Pattern, scrubText } from "./secrets.ts";

export type WholeBody = { readonly body: Buffer } | { readonly unreadable: true } | { readonly refused: Pattern };

/** The body as the agent gets it; unreadable when it cannot be decoded (or expands past `max`). */
export function scrubWholeBody(body: Buffer, declared: readonly Coding[], patterns: readonly Pattern[], max: number): WholeBody {
  const layers = bodyLayers(body, declared, max);
  if (layers === null) return { unreadable: true };
  const outermost = Math.min(declared.length, layers.length - 1);
  let current = Buffer.from(scrubText(layers[layers.length - 1]!.body.toString("latin1"), patterns), "latin1");
  for (let i = layers.length - 1; i > outermost; i--) {
    const outer = current.equals(layers[i]!.body) ? layers[i - 1]!.body : encodeOne(current, layers[i]!.coding as Coding);
    current = Buffer.from(scrubText(outer.toString("latin1"), patterns), "latin1");
  }
  if (sniffCoding(current) === null) {
    // Read with whole values replaced only: a value wrapped in lines (base64 in MIME) has heads and
    // tails in some lines, and replacing those would hide the value from the lenient view while
    // its middle lines went out.
    const innermost = layers[layers.length - 1]!.body.toString("latin1");
    const viewed = layers.length - 1 === outermost ? scrubText(innermost, patterns, false) : current.toString("latin1");
    for (const view of lenientViews(viewed)) {
      const hit = findSecret(view, patterns);
      if (hit) return { refused: hit };
    }
  }
  return { body: current };
}
