// Content and transfer codings, undone so the guard and scrubbing read what a server (or the
// agent) would read: the codings a message declares (Content-Encoding, and Transfer-Encoding's
// codings other than chunked, applied after them), and then whatever a body turns out to be by its
// magic bytes (gzip, zlib), however often nested. Every decode is capped: a small body may expand
// without bound (a decompression bomb), and past the cap it is refused, not scanned in part.
import { type Transform } from "node:stream";
import { brotliDecompressSync, createBrotliDecompress, createGunzip, createInflate, deflateSync, gunzipSync, gzipSync, inflateSync } from "node:zlib";

export type Coding = "gzip" | "deflate" | "br" | "aws-chunked";

/** Nested codings found by magic bytes are undone up to this depth. */
export const MAX_SNIFFED_LAYERS = 4;

function parseCodings(text: string): string[] {
  return text
    .split(",")
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== "" && c !== "identity");
}

/**
 * Content codings we can read (outermost last, as declared); null when one is not readable.
 * `aws-chunked` (S3's framing of a streamed upload, chunk signatures and trailing checksums) only
 * in a request, where `isRequest` says so: no response is framed that way.
 */
export function codingsOf(encoding: string | string[] | undefined, isRequest = false): Coding[] | null {
  const codings = parseCodings(Array.isArray(encoding) ? encoding.join(",") : (encoding ?? ""));
  const out: Coding[] = [];
  for (const c of codings) {
    if (c === "gzip" || c === "x-gzip") out.push("gzip");
    else if (c === "deflate" || c === "br") out.push(c);
    else if (c === "aws-chunked" && isRequest) out.push(c);
    else return null;
  }
  return out;
}

/**
 * Every coding applied to a message's body, in the order applied: content codings, then transfer
 * codings other than the framing's `chunked` (RFC 9112 §6.1; hop-by-hop, so a proxy may undo them).
 */
export function messageCodings(contentEncoding: string | string[] | undefined, transferEncoding: string | string[] | undefined, isRequest = false): Coding[] | null {
  const content = codingsOf(contentEncoding, isRequest);
  const transfer = codingsOf(
    parseCodings(Array.isArray(transferEncoding) ? transferEncoding.join(",") : (transferEncoding ?? ""))
      .filter((c) => c !== "chunked")
      .join(","),
  );
  return content && transfer ? [...content, ...transfer] : null;
}

/** A framing line of aws-chunked: the size in hex, then extensions (`;chunk-signature=…`). */
const AWS_CHUNK_LINE = /^([0-9a-fA-F]{1,16})(;[!#$%&'*+.^_`|~0-9A-Za-z-]+=[^\r\n;]*)*$/;
const AWS_TRAILER_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*$/;

/**
 * The payload of an aws-chunked body: `size;ext\r\n data \r\n` … `0;ext\r\n`, trailer lines, an
 * empty line. Strict: anything else (a short chunk, bytes after the end) throws, so a body whose
 * payload we cannot be sure of is refused rather than checked in part.
 */
export function decodeAwsChunked(body: Buffer, maxOutputLength: number): Buffer {
  const out: Buffer[] = [];
  let size = 0;
  let at = 0;
  const line = (): string => {
    const end = body.indexOf("\r\n", at, "latin1");
    if (end < 0 || end - at > 4096) throw new Error("aws-chunked: a framing line is missing or too long");
    const text = body.toString("latin1", at, end);
    at = end + 2;
    return text;
  };
  for (;;) {
    const head = AWS_CHUNK_LINE.exec(line());
    if (!head) throw new Error("aws-chunked: bad chunk size line");
    const length = Number.parseInt(head[1]!, 16);
    if (length === 0) break;
    size += length;
    if (size > maxOutputLength) throw Object.assign(new Error("aws-chunked: too large"), { code: "ERR_BUFFER_TOO_LARGE" });
    if (at + length + 2 > body.length || body.toString("latin1", at + length, at + length + 2) !== "\r\n") throw new Error("aws-chunked: a chunk is cut short");
    out.push(body.subarray(at, at + length));
    at += length + 2;
  }
  for (let text = line(); text !== ""; text = line()) {
    if (!AWS_TRAILER_LINE.test(text)) throw new Error("aws-chunked: bad trailer line");
  }
  if (at !== body.length) throw new Error("aws-chunked: bytes after the last chunk");
  return Buffer.concat(out);
}

/**
 * A request's codings, and how many of them are content codings (the rest are hop-by-hop). S3
 * lists aws-chunked first, yet it is the outermost framing (undone first, after transfer codings);
 * and a body that says it is framed (x-amz-content-sha256: STREAMING-…) is read as framed whatever
 * Content-Encoding says, since that is how S3 reads it: the guard must read what the upstream will.
 */
export function requestCodings(
  contentEncoding: string | string[] | undefined,
  transferEncoding: string | string[] | undefined,
  isAwsFramed: boolean,
): { readonly all: Coding[]; readonly content: number } | null {
  const content = codingsOf(contentEncoding, true);
  const all = messageCodings(contentEncoding, transferEncoding, true);
  if (content === null || all === null) return null;
  const framed = isAwsFramed || content.includes("aws-chunked");
  const ordered: Coding[] = [...content.filter((c) => c !== "aws-chunked"), ...(framed ? (["aws-chunked"] as const) : [])];
  return { all: [...ordered, ...all.slice(content.length)], content: ordered.length };
}

function decodeOne(body: Buffer, coding: Coding, maxOutputLength: number): Buffer {
  if (coding === "aws-chunked") return decodeAwsChunked(body, maxOutputLength);
  if (coding === "br") return brotliDecompressSync(body, { maxOutputLength });
  if (coding === "deflate") return inflateSync(body, { maxOutputLength });
  return gunzipSync(body, { maxOutputLength });
}

export function encodeOne(body: Buffer, coding: Coding): Buffer {
  return coding === "gzip" ? gzipSync(body) : coding === "deflate" ? deflateSync(body) : body;
}

/** The coding a body's first bytes announce, if any: gzip's 1f 8b 08, or a zlib header. */
export function sniffCoding(body: Buffer): Coding | null {
  if (body.length >= 3 && body[0] === 0x1f && body[1] === 0x8b && body[2] === 0x08) return "gzip";
  // zlib: CM = 8 (deflate), window ≤ 32K, and the header checksum (FCHECK) holds.
  if (body.length >= 2 && (body[0]! & 0x0f) === 8 && body[0]! >> 4 <= 7 && ((body[0]! << 8) | body[1]!) % 31 === 0) return "deflate";
  return null;
}

/** A body's layers, outermost first: each decoded layer with the coding that wrapped it. */
export interface Layer {
  readonly body: Buffer;
  /** The coding that, applied to this layer, gives the previous one (null for the body as sent). */
  readonly coding: Coding | null;
}

/**
 * A whole body and every layer under it: the declared codings undone (null when that fails: such a
 * body cannot be scanned), then layers found by magic bytes (a sniffed layer that does not decode
 * is just data, and scanning stops there).
 */
export function bodyLayers(body: Buffer, declared: readonly Coding[], maxOutputLength: number): Layer[] | null {
  const layers: Layer[] = [{ body, coding: null }];
  if (body.length === 0) return layers;
  let current = body;
  try {
    for (const coding of [...declared].reverse()) {
      current = decodeOne(current, coding, maxOutputLength);
      layers.push({ body: current, coding });
    }
  } catch {
    return null;
  }
  for (let depth = 0; depth < MAX_SNIFFED_LAYERS; depth++) {
    const coding = sniffCoding(current);
    if (!coding) break;
    try {
      current = decodeOne(current, coding, maxOutputLength);
    } catch (error) {
      // A bomb is refused; anything else that merely looks compressed is data.
      if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") return null;
      break;
    }
    layers.push({ body: current, coding });
  }
  return layers;
}

/** The same body with a whole body for the declared part (null when it cannot be decoded). */
export function decodeBody(body: Buffer, encoding: string | string[] | undefined, maxOutputLength = 64 * 1024 * 1024): Buffer | null {
  const codings = codingsOf(encoding);
  if (codings === null) return null;
  const layers = bodyLayers(body, codings, maxOutputLength);
  return layers ? layers[Math.min(codings.length, layers.length - 1)]!.body : null;
}

/** Streaming decoders for the codings, outermost first; null when one is not readable. */
export function decoderChain(codings: readonly Coding[]): Transform[] {
  // aws-chunked is never here: codingsOf gives it only for a request, whose body is read whole.
  return [...codings].reverse().map((c) => (c === "br" ? createBrotliDecompress() : c === "deflate" ? createInflate() : createGunzip()));
}
