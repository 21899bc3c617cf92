// Scrubbing a whole body (a small response, a refused WebSocket handshake's answer): its declared
// codings undone, and every layer its magic bytes reveal (gzip in an undeclared body, gzip in gzip)
// cleaned too. The innermost layer is scrubbed and each sniffed layer that changed is encoded again,
// so the agent gets the body in the shape it was sent, less the declared codings, without a value.
import { bodyLayers, type Coding, encodeOne } from "./codings.ts";
import { lenientViews } from "./lenient-views.ts";
import { findSecret, type Pattern, scrubText } from "./secrets.ts";

/** The body as the agent gets it, or null when it cannot be decoded (or expands past `max`). */
export function scrubWholeBody(body: Buffer, declared: readonly Coding[], patterns: readonly Pattern[], max: number): Buffer | null {
  const layers = bodyLayers(body, declared, max);
  if (layers === null) return null;
  const outermost = Math.min(declared.length, layers.length - 1);
  let current = Buffer.from(scrubText(layers[layers.length - 1]!.body.toString("latin1"), patterns), "latin1");
  for (let i = layers.length - 1; i > outermost; i--) {
    const outer = current.equals(layers[i]!.body) ? layers[i - 1]!.body : encodeOne(current, layers[i]!.coding as Coding);
    current = Buffer.from(scrubText(outer.toString("latin1"), patterns), "latin1");
  }
  return current;
}

/**
 * A value still in a scrubbed body, seen only in a lenient view (lenient-views.ts: wrapped base64,
 * a character put in it, UTF-16, HTML references): it cannot be replaced where it stands, so the
 * caller refuses the body instead. Null for most bodies.
 */
export function lenientHit(clean: Buffer, patterns: readonly Pattern[]): Pattern | null {
  for (const view of lenientViews(clean.toString("latin1"))) {
    const hit = findSecret(view, patterns);
    if (hit) return hit;
  }
  return null;
}
