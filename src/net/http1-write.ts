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

/** A part this big is written on its own rather than copied to join its neighbours (see writeParts). */
const OWN_WRITE_BYTES = 4 * 1024;

/**
 * Writes `parts` (a head, a chunk's size line, bytes) to a socket in order, in few writes and
 * without copying a big part. Each write is at least one TLS record, so small parts are joined
 * into one write. A big part goes as it is, in a write of its own: a TLS socket under Bun calls
 * back a write on the next tick, so a second write in the same turn waits in the stream's buffer,
 * and two or more waiting there are joined with Buffer.concat (a copy of the whole chunk, and
 * garbage: 9% of the proxy's samples in a 1 GiB download when a big part was cut in three).
 * Returns false when the socket wants `drain` first.
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
    if (part.length === 0) continue;
    if (part.length < OWN_WRITE_BYTES) {
      run.push(part);
      continue;
    }
    flush();
    ok = socket.write(part) && ok;
  }
  flush();
  return ok;
}

/** The CRLF owed by the chunk before, then the last chunk and the empty trailer. */
const CRLF_LAST_CHUNK: Buffer = Buffer.from("\r\n0\r\n\r\n", "latin1");

/**
 * A chunked body written piece by piece through `out` (writeParts on the socket, or a writer that
 * adds a head first). A chunk with a big part owes its closing CRLF: it goes out joined to the
 * next chunk's size line when that is written in the same turn of the event loop, or alone once
 * the turn's I/O is done (setImmediate), so a client that reads the CRLF before handing over a
 * chunk, as urllib3 does, is not kept waiting for the next one. Not sooner: the size line's write
 * calls back on the next tick, and only then does the socket take the big part waiting behind it.
 * A CRLF written before that (on the next tick, or right after the big part) waits beside the big
 * part, and the two are joined by a copy of the chunk (writeParts): a 1 GiB download was copied
 * whole that way, in 2309 joins.
 */
export class ChunkedWriter {
  private owed = false;
  private settling = false;

  constructor(private readonly out: (parts: readonly Buffer[]) => boolean) {}

  /** `parts` as one chunk (nothing for an empty one: it would end the body). */
  write(parts: readonly Buffer[]): boolean {
    let length = 0;
    let big = false;
    for (const part of parts) {
      length += part.length;
      if (part.length >= OWN_WRITE_BYTES) big = true;
    }
    if (length === 0) return true;
    const size = chunkSizeLine(length);
    const lead = this.owed ? Buffer.concat([CRLF, size]) : size;
    this.owed = false;
    if (!big) return this.out([lead, ...parts, CRLF]);
    this.owed = true;
    if (!this.settling) {
      this.settling = true;
      setImmediate(this.settle);
    }
    return this.out([lead, ...parts]);
  }

  /** The last chunk, after the CRLF still owed. */
  end(): boolean {
    const last = this.owed ? CRLF_LAST_CHUNK : LAST_CHUNK;
    this.owed = false;
    return this.out([last]);
  }

  private readonly settle = (): void => {
    this.settling = false;
    if (!this.owed) return;
    this.owed = false;
    this.out([CRLF]);
  };
}
