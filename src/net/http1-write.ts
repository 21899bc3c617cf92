// Writing HTTP/1.1 heads and chunks. Every name and value is checked with the same rules the parser
// applies on the way in, so nothing we write can split a header or start a second message: a bad
// one throws, naming the header (never its value, which may be a credential).
import { isValidHeaderName, isValidHeaderValue, nameForMessage, TOKEN, VALUE_CTL } from "./http1-syntax.ts";

export type HeaderInput = Iterable<readonly [string, string]> | Readonly<Record<string, string | readonly string[] | number | undefined>>;

/** Visible ASCII only, as the parser accepts: a char above 0xff would be written as its low byte. */
const TARGET_CHARS = /[^\x21-\x7e]/;
export const CRLF: Buffer = Buffer.from("\r\n", "latin1");

export const LAST_CHUNK: Buffer = Buffer.from("0\r\n\r\n", "latin1");

function headerLine(name: string, value: string): string {
  if (!isValidHeaderName(name)) throw new Error(`invalid header name "${nameForMessage(name)}"`);
  if (!isValidHeaderValue(value)) throw new Error(`a control character (CR, LF, NUL...) or a character above 0xff in the value of header ${name}`);
  return `${name}: ${value}\r\n`;
}

function headerLines(headers: HeaderInput): string {
  let out = "";
  if (Symbol.iterator in headers) {
    for (const [name, value] of headers as Iterable<readonly [string, string]>) out += headerLine(name, value);
    return out;
  }
  for (const [name, value] of Object.entries(headers as Record<string, string | readonly string[] | number | undefined>)) {
    if (value === undefined) continue;
    if (typeof value === "string") out += headerLine(name, value);
    else if (typeof value === "number") out += headerLine(name, String(value));
    else for (const one of value) out += headerLine(name, one);
  }
  return out;
}

/** `METHOD target HTTP/1.1`, the headers as given (names keep their case), and the empty line. */
export function requestHead(method: string, target: string, headers: HeaderInput): Buffer {
  if (!TOKEN.test(method)) throw new Error("invalid method (not a token)");
  if (target === "" || TARGET_CHARS.test(target)) throw new Error("invalid request target (empty, or a space, control character or non-ASCII character in it)");
  return Buffer.from(`${method} ${target} HTTP/1.1\r\n${headerLines(headers)}\r\n`, "latin1");
}

export function responseHead(status: number, reason: string, headers: HeaderInput): Buffer {
  if (!Number.isInteger(status) || status < 100 || status > 999) throw new Error(`invalid status ${String(status).slice(0, 20)}`);
  if (VALUE_CTL.test(reason)) throw new Error("a control character in the reason phrase");
  return Buffer.from(`HTTP/1.1 ${status} ${reason}\r\n${headerLines(headers)}\r\n`, "latin1");
}

/** Size lines of the common chunk sizes, made once: every chunk of a stream would make one. */
const SIZE_LINES = new Map<number, Buffer>();

/** `SIZE\r\n` for a chunk of `length` bytes (length > 0). */
export function chunkSizeLine(length: number): Buffer {
  let line = SIZE_LINES.get(length);
  if (line) return line;
  line = Buffer.from(`${length.toString(16)}\r\n`, "latin1");
  // Socket reads come in a few sizes (16 KiB TLS records, 64 KiB reads); a stream of odd sizes
  // must not grow the map without end.
  if (SIZE_LINES.size < 256) SIZE_LINES.set(length, line);
  return line;
}

/** One chunk as [size line, bytes, CRLF] for a writev; an empty chunk is [] (it would end the body). */
export function chunk(bytes: Buffer): Buffer[] {
  if (bytes.length === 0) return [];
  return [chunkSizeLine(bytes.length), bytes, CRLF];
}

/** A part this big is not copied whole to join its neighbours (see writeParts). */
const OWN_WRITE_BYTES = 64 * 1024;
/** How much of a big part's each end is copied to join the small parts before and after it. */
const EDGE_BYTES = 16 * 1024;

/**
 * Writes `parts` (a head, a chunk's size line, bytes, CRLF) to a socket in order, in few writes
 * and few copies. Each write is at least one TLS record, so a small part written alone (a size
 * line, a CRLF) costs a record of its own and, under load, a wait: a 1 GiB chunked upload took
 * twice as long that way. Joining everything copies every byte of a bulk transfer once more
 * (and Bun's socket joins corked writes with Buffer.concat anyway). So small parts are joined,
 * and a big part is written in place except its first and last EDGE_BYTES, which are joined to
 * the small parts around it. Returns false when the socket wants `drain` first.
 */
export function writeParts(socket: { write(bytes: Buffer): boolean }, parts: readonly Buffer[]): boolean {
  if (parts.length === 1) return socket.write(parts[0]!);
  let ok = true;
  let run: Buffer[] = [];
  const flush = () => {
    if (run.length > 0) ok = socket.write(run.length === 1 ? run[0]! : Buffer.concat(run)) && ok;
    run = [];
  };
  for (const part of parts) {
    if (part.length < OWN_WRITE_BYTES) {
      run.push(part);
      continue;
    }
    run.push(part.subarray(0, EDGE_BYTES));
    flush();
    ok = socket.write(part.subarray(EDGE_BYTES, part.length - EDGE_BYTES)) && ok;
    run.push(part.subarray(part.length - EDGE_BYTES));
  }
  flush();
  return ok;
}
