// Colour for the CLI's own words (error:, hint:, statuses, table headers), only where a person
// reads it: the stream is a terminal, NO_COLOR is not set (no-color.org) and TERM is not "dumb".
// Piped output stays plain, so scripts and `| grep` see the same bytes as before. Untrusted text
// is made safe (src/shared/text.ts) before it is wrapped here; nothing here escapes anything.

export type Style = "red" | "green" | "yellow" | "dim" | "bold";

const CODES: Readonly<Record<Style, [open: string, close: string]>> = {
  red: ["\x1b[31m", "\x1b[39m"],
  green: ["\x1b[32m", "\x1b[39m"],
  yellow: ["\x1b[33m", "\x1b[39m"],
  dim: ["\x1b[2m", "\x1b[22m"],
  bold: ["\x1b[1m", "\x1b[22m"],
};

export function isColourOn(stream: NodeJS.WriteStream): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== "") return false;
  if (process.env.TERM === "dumb") return false;
  return Boolean(stream.isTTY);
}

/** `text` in `style` when `stream` shows colour; else `text` as it is. */
export function paint(stream: NodeJS.WriteStream, style: Style | undefined, text: string): string {
  if (style === undefined || text === "" || !isColourOn(stream)) return text;
  const [open, close] = CODES[style];
  return `${open}${text}${close}`;
}

// The words our tables use for states; anything else stays uncoloured.
const STATUS_STYLES: Readonly<Record<string, Style>> = {
  pending: "yellow",
  approved: "green",
  applied: "green",
  active: "green",
  connected: "green",
  yes: "green",
  rejected: "red",
  revoked: "red",
  "refresh failed": "red",
  "not connected": "yellow",
  expired: "dim",
  ended: "dim",
  no: "dim",
};

export function statusStyle(text: string): Style | undefined {
  return STATUS_STYLES[text.trim()];
}
