// HTTP/1.1 field syntax (RFC 9110 section 5, RFC 9112 sections 5-7): what a header name and value may
// hold, the comma lists, Content-Length and Transfer-Encoding. Pure functions over strings; the
// parser and the serializer both use them, so what we write is exactly what we would accept.

/** Header fields in order: names as sent, values with OWS trimmed. */
export type HeaderList = [name: string, value: string][];

export interface ParseError {
  readonly code: "head_too_large" | "malformed" | "unsupported";
  /** Names what is wrong. Never echoes a header value, a target or more than ~60 characters of input. */
  readonly message: string;
}

export function malformed(message: string): ParseError {
  return { code: "malformed", message };
}

// tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * Anything but HTAB, SP, VCHAR and obs-text (0x80-0xff). Heads are latin1 strings, one char per
 * byte; a char above 0xff would be written as its low byte, so "\u010d" would become a CR: refused.
 */
export const VALUE_CTL = /[^\t\x20-\x7e\x80-\xff]/;

export function isValidHeaderName(s: string): boolean {
  return TOKEN.test(s);
}

/** No CR, LF, NUL or other control character but HTAB, nothing above 0xff: a value that cannot split or end a line. */
export function isValidHeaderValue(s: string): boolean {
  return !VALUE_CTL.test(s);
}

/** Header names are echoed in errors only when short and printable (a name is never a secret). */
export function nameForMessage(name: string): string {
  const printable = name.replace(/[^\x21-\x7e]/g, "?");
  return printable.length > 40 ? `${printable.slice(0, 40)}…` : printable;
}

/** Strips SP and HTAB only: String.prototype.trim would also take NBSP (0xa0) and VT. */
export function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && (s.charCodeAt(start) === 0x20 || s.charCodeAt(start) === 0x09)) start++;
  while (end > start && (s.charCodeAt(end - 1) === 0x20 || s.charCodeAt(end - 1) === 0x09)) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/**
 * Header lines (the text between the start line and the empty line, joined by CRLF) into a list.
 * Refuses obs-fold, whitespace before the colon, names that are not tokens and control characters
 * in values; a bare CR shows up as a control character, since lines were split on CRLF only.
 */
export function parseFieldLines(text: string, into: HeaderList, maxFields: number, what: "header" | "trailer"): ParseError | null {
  if (text.length === 0) return null;
  // One pass over the characters with lookup tables (heads are small; bodies never come here). A
  // line it cannot take goes to explainFieldLines, which says what is wrong with it.
  const n = text.length;
  let at = 0;
  let count = 0;
  while (at <= n) {
    const nameStart = at;
    while (at < n && IS_TCHAR[text.charCodeAt(at)] === 1) at++;
    if (at === nameStart || at >= n || text.charCodeAt(at) !== 0x3a) return explainFieldLines(text, what);
    const nameEnd = at++;
    while (at < n && (text.charCodeAt(at) === 0x20 || text.charCodeAt(at) === 0x09)) at++;
    const valueStart = at;
    let valueEnd = at;
    for (; at < n; at++) {
      const c = text.charCodeAt(at);
      if (c === 0x0d) break;
      if (IS_VALUE_CHAR[c] !== 1) return explainFieldLines(text, what);
      if (c !== 0x20 && c !== 0x09) valueEnd = at + 1;
    }
    if (at < n && text.charCodeAt(at + 1) !== 0x0a) return explainFieldLines(text, what);
    if (++count > maxFields) return { code: "head_too_large", message: `more than ${maxFields} ${what} fields` };
    into.push([text.slice(nameStart, nameEnd), text.slice(valueStart, valueEnd)]);
    at += 2; // past the CRLF; at === n + 2 after the last line
  }
  return null;
}

const IS_TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") IS_TCHAR[c.charCodeAt(0)] = 1;
/** HTAB, SP, VCHAR and obs-text; anything above 0xff cannot come from a latin1 decode. */
const IS_VALUE_CHAR = new Uint8Array(256);
for (let c = 0x20; c <= 0xff; c++) IS_VALUE_CHAR[c] = c === 0x7f ? 0 : 1;
IS_VALUE_CHAR[0x09] = 1;

/**
 * The slow walk over field lines that the fast path did not accept: the first thing wrong, named by
 * its line, never quoted. An upstream's header line may hold a credential it echoes (`X-<key>: 1`),
 * and the message reaches the agent, the request log and `run`'s notices unscrubbed: quoting even
 * the name gave up to 40 characters of a key (red team, session 7).
 */
function explainFieldLines(text: string, what: "header" | "trailer"): ParseError {
  let start = 0;
  for (let line = 1; start <= text.length; line++) {
    let end = text.indexOf("\r\n", start);
    if (end === -1) end = text.length;
    const first = text.charCodeAt(start);
    if (first === 0x20 || first === 0x09) return malformed(`obs-fold (a ${what} line starting with whitespace) is not accepted`);
    const colon = text.indexOf(":", start);
    if (colon === -1 || colon >= end) return malformed(`a ${what} line has no colon`);
    if (colon === start) return malformed(`a ${what} line has an empty name`);
    const name = text.slice(start, colon);
    if (!TOKEN.test(name)) return malformed(`the name on ${what} line ${line} is not a token (a space, a control character or a separator in it, or whitespace before the colon)`);
    const value = trimOws(text.slice(colon + 1, end));
    if (VALUE_CTL.test(value)) return malformed(`a control character (CR, LF, NUL...) in the value on ${what} line ${line}`);
    start = end + 2;
  }
  return malformed(`a malformed ${what} line`);
}

export function headerValues(headers: HeaderList, name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (const [n, v] of headers) if (n.length === lower.length && n.toLowerCase() === lower) out.push(v);
  return out;
}

export function headerValue(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of headers) if (n.length === lower.length && n.toLowerCase() === lower) return v;
  return undefined;
}

/** The elements of a comma list over all of the field's lines, OWS trimmed, empty elements dropped (RFC 9110 5.6.1). */
export function listElements(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    for (const part of value.split(",")) {
      const element = trimOws(part);
      if (element !== "") out.push(element);
    }
  }
  return out;
}

/** Whether a Connection header's list holds the option (case-insensitive). */
export function hasConnectionOption(values: readonly string[], option: string): boolean {
  for (const value of values) {
    // The common single-element value without a list to split.
    if (value.length === option.length && value.toLowerCase() === option) return true;
    if (value.includes(",")) for (const element of listElements([value])) if (element.toLowerCase() === option) return true;
  }
  return false;
}

const DIGITS = /^[0-9]{1,15}$/;

/**
 * Content-Length over all its lines: digits only (no sign, no inner space, at most 15 digits so the
 * number is exact), and every element equal (RFC 9112 6.3 item 5). Anything else is refused: two
 * parsers that pick different lengths is request smuggling.
 */
export function parseContentLength(values: readonly string[]): number | ParseError {
  let length = -1;
  for (const value of values) {
    for (const part of value.split(",")) {
      const element = trimOws(part);
      if (!DIGITS.test(element)) return malformed("Content-Length is not 1-15 digits");
      const n = Number(element);
      if (length !== -1 && n !== length) return malformed("conflicting Content-Length values");
      length = n;
    }
  }
  if (length === -1) return malformed("an empty Content-Length");
  return length;
}

/**
 * The transfer codings, in the order applied, lower-cased, or an error when an element is not a
 * bare token (no parameters) or `chunked` is applied twice. `chunked` anywhere but last is left to the
 * caller: a request is refused, a response is close-delimited (RFC 9112 6.3 items 3-4).
 */
export function transferCodings(values: readonly string[]): string[] | ParseError {
  const codings: string[] = [];
  const elements: string[] = [];
  for (const value of values) {
    for (const part of value.split(",")) {
      const element = trimOws(part);
      // RFC 9110 5.6.1 lets a recipient skip empty elements; in the one field that decides framing
      // we refuse them with llhttp, so "chunked," cannot mean two things to two parsers.
      if (element === "") return malformed("an empty element in Transfer-Encoding");
      elements.push(element);
    }
  }
  for (const element of elements) {
    // No coding in use takes parameters (chunked must not): "chunked;" or "chunked; x" is a form
    // parsers read differently, so it is refused, not stripped.
    const name = element.toLowerCase();
    if (!TOKEN.test(name)) return malformed("Transfer-Encoding holds something that is not a coding name");
    if (name === "chunked" && codings.includes("chunked")) return malformed("Transfer-Encoding applies chunked twice");
    codings.push(name);
  }
  return codings;
}

/**
 * Fields that frame or route a message: in a trailer they arrive after the decision they would
 * change, and a recipient that merges trailers into the head would read a second framing.
 */
const HEAD_ONLY_FIELDS = new Set(["transfer-encoding", "content-length", "host", "connection", "keep-alive", "upgrade", "te", "trailer", "content-encoding", "authorization", "proxy-authorization"]);

/** The first trailer that may not be a trailer, or null. */
export function forbiddenTrailer(trailers: HeaderList): string | null {
  for (const [name] of trailers) if (HEAD_ONLY_FIELDS.has(name.toLowerCase())) return name;
  return null;
}
