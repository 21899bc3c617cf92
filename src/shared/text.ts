// Text from an agent or an upstream is data, never terminal control (STYLE principle 11). Every
// place that prints such text to a terminal (CLI, TUI, `run`'s notice) passes it through here:
// characters a terminal acts on (C0/C1 controls, ESC, DEL) or that change how the surrounding text
// looks without showing themselves (bidi overrides, zero-width and other invisible format
// characters, Unicode tags) become visible escapes such as `\x1b` or `\u202e`. The result is for
// eyes, not a reversible encoding: a backslash is left as it is, so readable paths stay readable.

/**
 * What is escaped. C0 (U+0000–U+001F), DEL and C1 (U+0080–U+009F): cursor movement, erase, OSC 52
 * clipboard writes, OSC 8 links, SGR 8 (hidden text), 8-bit CSI. The rest draw nothing but
 * reorder or hide text: soft hyphen, Arabic letter mark, Hangul fillers, Mongolian vowel
 * separator, zero-width space/joiners and LRM/RLM, line and paragraph separators, the embeddings,
 * overrides and isolates (U+202A–U+202E, U+2066–U+2069), word joiner and invisible operators
 * (U+2060–U+206F), variation selectors other than the emoji ones (FE0E/FE0F stay), the BOM,
 * interlinear annotation marks, tags (U+E0000–U+E007F, "ASCII smuggling") and the supplementary
 * variation selectors. A lone surrogate (not a character at all) is escaped too.
 */
const UNSAFE =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: lone surrogates, variation selectors and joiners are exactly what this finds.
  /[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0d\ufeff\uffa0\ufff9-\ufffb]|\udb40[\udc00-\udc7f\udd00-\uddef]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const SHORT: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeOne(char: string): string {
  const short = SHORT[char];
  if (short) return short;
  const code = char.codePointAt(0)!;
  if (code < 0x80) return `\\x${code.toString(16).padStart(2, "0")}`;
  if (code <= 0xffff || char.length === 1) return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
  return `\\u{${code.toString(16)}}`;
}

/** One line of untrusted text, safe to print: every unsafe character (line breaks included) escaped. */
export function displaySafe(text: string): string {
  return text.replace(UNSAFE, escapeOne);
}

/**
 * Multi-line untrusted text (a proposal's message, instructions): split at `\n` (a `\r\n` pair
 * counts as one break), each line made safe. A lone `\r` is escaped, never obeyed, so no line can
 * return to its start and overwrite itself. Callers indent the lines, so none can pose as ours.
 */
export function displaySafeLines(text: string): string[] {
  return text.split(/\r?\n/).map(displaySafe);
}

/**
 * JSON text for a terminal: the same value for any parser, with the characters `displaySafe`
 * escapes written as `\uXXXX` (JSON.stringify escapes C0 but leaves C1, DEL and bidi raw).
 */
export function jsonTerminalSafe(json: string): string {
  return json.replace(UNSAFE, (char) => {
    // Pretty-printing's own line breaks; JSON.stringify never leaves one raw inside a string.
    if (char === "\n") return char;
    let out = "";
    for (let i = 0; i < char.length; i++) out += `\\u${char.charCodeAt(i).toString(16).padStart(4, "0")}`;
    return out;
  });
}

/** True when `displaySafe` would change the text: a hint to the reader that something was escaped. */
export function hasUnsafeText(text: string): boolean {
  return text.search(UNSAFE) !== -1;
}

/**
 * `label: text` for untrusted text: on one line when it is one line, otherwise the label alone and
 * each line of the text below it behind a bar. Either way every line of the text starts with our
 * label or our bar, so none can pass for a line the program wrote.
 */
export function labelled(indent: string, label: string, text: string): string[] {
  const lines = displaySafeLines(text);
  if (lines.length === 1) return [`${indent}${label}: ${lines[0]}`];
  return [`${indent}${label}:`, ...lines.map((line) => `${indent}  │ ${line}`)];
}

/**
 * `text` as one shell word in single quotes: a command we print with an agent's text in it (a URL,
 * a path) is safe to copy into a shell, since `$(…)`, backquotes and `;` stay text.
 */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
