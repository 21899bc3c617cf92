// Spellings a value takes by accident as often as on purpose, seen by the guard as extra views of
// what an agent sends (found by red-teaming): base64 wrapped in lines (MIME, `base64` without -w0)
// or with spaces, a value with a space, zero-width space or soft hyphen put in it, UTF-16 text
// (ASCII with NULs between), HTML character references and quoted-printable. Each view is the text
// with those taken out or decoded; the guard searches it like any other. Views are made only when
// their marker is there, and only for text read whole (URL, headers, bodies up to 8 MiB).

/** Whitespace, NUL, and the UTF-8 bytes of U+200B (zero-width space) and U+00AD (soft hyphen). */
const FILLER = /[\s\x00]+|\xe2\x80\x8b|\xc2\xad/g;
const HAS_FILLER = /[\s\x00]|\xe2\x80\x8b|\xc2\xad/;
const CHARACTER_REFERENCE = /&#(?:[xX]([0-9a-fA-F]{1,6})|([0-9]{1,7}));?/g;
const QUOTED_PRINTABLE = /=(?:([0-9A-Fa-f]{2})|\r?\n)/g;

function utf8Latin1(codePoint: number): string {
  if (codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return "";
  return Buffer.from(String.fromCodePoint(codePoint), "utf8").toString("latin1");
}

/** The extra views of `text` (latin1) worth searching; empty for most text. */
export function lenientViews(text: string): string[] {
  const views: string[] = [];
  if (HAS_FILLER.test(text)) views.push(text.replace(FILLER, ""));
  if (text.includes("&#")) {
    views.push(text.replace(CHARACTER_REFERENCE, (_m, hex: string | undefined, dec: string | undefined) => utf8Latin1(hex ? Number.parseInt(hex, 16) : Number(dec))));
  }
  QUOTED_PRINTABLE.lastIndex = 0;
  if (QUOTED_PRINTABLE.test(text)) {
    const decoded = text.replace(QUOTED_PRINTABLE, (_m, hex: string | undefined) => (hex ? String.fromCharCode(Number.parseInt(hex, 16)) : ""));
    views.push(decoded, decoded.replace(FILLER, ""));
  }
  return views;
}
