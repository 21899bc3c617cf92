// Where escapes start in bytes, as escapes.ts's escapePositions finds them in the latin1 text of
// the same bytes (`%XX`, or `\` then one of u " \ / b f n r t x; leftmost first, not overlapping),
// without making that text: the scrubber and the stream guard read a body chunk where it lies and
// make strings only of the short windows around escapes. Native memchr finds the candidates.

const PERCENT = 0x25;
const BACKSLASH = 0x5c;

/** Codes that may follow `\` in an escape (escapes.ts MAY_HAVE_ESCAPE). */
const AFTER_BACKSLASH = new Uint8Array(256);
for (const ch of 'u"\\/bfnrtx') AFTER_BACKSLASH[ch.charCodeAt(0)] = 1;

const HEX = new Uint8Array(256);
for (const ch of "0123456789abcdefABCDEF") HEX[ch.charCodeAt(0)] = 1;

/** Whether `bytes[from, to)` holds `%` or `\` at all (two native scans). */
export function hasEscapeByte(bytes: Uint8Array, from = 0, to = bytes.length): boolean {
  const view = from === 0 && to === bytes.length ? bytes : bytes.subarray(from, to);
  return view.indexOf(PERCENT) !== -1 || view.indexOf(BACKSLASH) !== -1;
}

/** Where escapes start in `bytes[from, to)` (an escape must end by `to`), in order. */
export function escapePositionsIn(bytes: Uint8Array, from = 0, to = bytes.length): number[] {
  const out: number[] = [];
  let percent = bytes.indexOf(PERCENT, from);
  let backslash = bytes.indexOf(BACKSLASH, from);
  let at = from;
  for (;;) {
    if (percent !== -1 && percent < at) percent = bytes.indexOf(PERCENT, at);
    if (backslash !== -1 && backslash < at) backslash = bytes.indexOf(BACKSLASH, at);
    const next = percent === -1 ? backslash : backslash === -1 ? percent : Math.min(percent, backslash);
    if (next === -1 || next >= to) return out;
    if (bytes[next] === PERCENT) {
      if (next + 2 < to && HEX[bytes[next + 1]!] === 1 && HEX[bytes[next + 2]!] === 1) {
        out.push(next);
        at = next + 3;
      } else at = next + 1;
    } else if (next + 1 < to && AFTER_BACKSLASH[bytes[next + 1]!] === 1) {
      out.push(next);
      at = next + 2;
    } else at = next + 1;
  }
}
