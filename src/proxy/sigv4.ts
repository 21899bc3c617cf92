// AWS Signature Version 4, the parts the proxy needs to sign a request with the real keys the
// agent never holds: the canonical request, the string to sign, the signing key, the header form,
// the presigned query form, and the chunk signatures of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD
// body (each chained from the previous signature, the first from the seed in Authorization).
// Follows AWS's "Create a signed AWS API request" section by section; the tests check it against
// @smithy/signature-v4, which nobody here wrote. Pure: no I/O, and nothing here logs.
import { createHash, createHmac } from "node:crypto";

export const ALGORITHM = "AWS4-HMAC-SHA256";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
export const STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export interface AwsKeys {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

export interface AwsScope {
  readonly region: string;
  readonly service: string;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

/** 20261201T180000Z and its date part. */
export function amzDate(date: Date): { stamp: string; day: string } {
  const stamp = date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  return { stamp, day: stamp.slice(0, 8) };
}

/** kSigning = HMAC chain over the date, region, service and "aws4_request" (spec: "Derive a signing key"). */
export function signingKey(secret: string, day: string, scope: AwsScope): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, day), scope.region), scope.service), "aws4_request");
}

export function credentialScope(day: string, scope: AwsScope): string {
  return `${day}/${scope.region}/${scope.service}/aws4_request`;
}

/** RFC 3986 unreserved characters stay, everything else is %XX upper-case (AWS's UriEncode). */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decodeLoose(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The canonical URI. S3 signs the path as sent; every other service normalizes it (no `.`, `..` or
 * empty segments) and encodes the already-encoded path once more (spec: "double-encoded").
 */
export function canonicalUri(path: string, service: string): string {
  if (path === "") return "/";
  if (service === "s3") return path;
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  const normalized = `${path.startsWith("/") ? "/" : ""}${segments.join("/")}${segments.length > 0 && path.endsWith("/") ? "/" : ""}`;
  return uriEncode(normalized).replace(/%2F/g, "/");
}

/** The query as name/value pairs, decoded. */
export function parseQuery(query: string): [string, string][] {
  if (query === "") return [];
  return query
    .split("&")
    .filter((pair) => pair !== "")
    .map((pair) => {
      const eq = pair.indexOf("=");
      return eq < 0 ? [decodeLoose(pair), ""] : [decodeLoose(pair.slice(0, eq)), decodeLoose(pair.slice(eq + 1))];
    });
}

/** Pairs encoded and sorted by name, then value (spec: "CanonicalQueryString"). */
export function canonicalQuery(pairs: readonly [string, string][]): string {
  return pairs
    .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
}

export interface SignableRequest {
  readonly method: string;
  /** The path as sent, without the query. */
  readonly path: string;
  readonly query: readonly [string, string][];
  /** Lower-case names of the headers to sign, with their values. */
  readonly headers: Readonly<Record<string, string>>;
}

export function canonicalRequest(req: SignableRequest, service: string, payloadHash: string): { text: string; signedHeaders: string } {
  const names = Object.keys(req.headers).sort();
  const headerLines = names.map((name) => `${name}:${req.headers[name]!.trim().replace(/\s+/g, " ")}\n`).join("");
  const signedHeaders = names.join(";");
  return { text: [req.method, canonicalUri(req.path, service), canonicalQuery(req.query), headerLines, signedHeaders, payloadHash].join("\n"), signedHeaders };
}

/** The signature over a canonical request, and the parts Authorization and the chunks need. */
export function signRequest(req: SignableRequest, keys: AwsKeys, scope: AwsScope, payloadHash: string, stamp: string): { signature: string; signedHeaders: string; key: Buffer; credential: string } {
  const day = stamp.slice(0, 8);
  const { text, signedHeaders } = canonicalRequest(req, scope.service, payloadHash);
  const stringToSign = [ALGORITHM, stamp, credentialScope(day, scope), sha256Hex(text)].join("\n");
  const key = signingKey(keys.secretAccessKey, day, scope);
  return { signature: hmac(key, stringToSign).toString("hex"), signedHeaders, key, credential: `${keys.accessKeyId}/${credentialScope(day, scope)}` };
}

/** The Authorization header for a header-signed request. */
export function authorizationHeader(credential: string, signedHeaders: string, signature: string): string {
  return `${ALGORITHM} Credential=${credential}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}

/**
 * The signature of one chunk of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body (spec: "Signature
 * calculation for the streaming upload"): the previous signature (the seed for the first) chained in.
 */
export function chunkSignature(key: Buffer, stamp: string, scope: AwsScope, previous: string, chunk: Buffer): string {
  const stringToSign = ["AWS4-HMAC-SHA256-PAYLOAD", stamp, credentialScope(stamp.slice(0, 8), scope), previous, EMPTY_SHA256, sha256Hex(chunk)].join("\n");
  return hmac(key, stringToSign).toString("hex");
}

const CHUNK_HEAD = /^([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})$/;
/** A chunk is held whole until signed: bigger ones are refused rather than held without bound. */
export const MAX_SIGNED_CHUNK = 16 * 1024 * 1024;

/**
 * A STREAMING-AWS4-HMAC-SHA256-PAYLOAD body signed again chunk by chunk as it streams, from our
 * seed. Each chunk is held until its data is complete (its signature covers it), then goes on with
 * the new signature; the framing is otherwise unchanged, so the length is too (a signature is
 * always 64 hex digits). `push` and `end` give the bytes to send, or null when the framing is not
 * that (nothing more is sent).
 */
export class ChunkResigner {
  private pending: Buffer = Buffer.alloc(0);
  private previous: string;
  private done = false;

  constructor(
    private readonly key: Buffer,
    private readonly stamp: string,
    private readonly scope: AwsScope,
    seed: string,
  ) {
    this.previous = seed;
  }

  push(bytes: Buffer): Buffer | null {
    this.pending = this.pending.length === 0 ? bytes : Buffer.concat([this.pending, bytes]);
    const out: Buffer[] = [];
    for (;;) {
      if (this.done) return this.pending.length === 0 ? Buffer.concat(out) : null;
      const lineEnd = this.pending.indexOf("\r\n", 0, "latin1");
      if (lineEnd < 0) return this.pending.length > 100 ? null : Buffer.concat(out);
      if (lineEnd > 100) return null;
      const head = CHUNK_HEAD.exec(this.pending.toString("latin1", 0, lineEnd));
      if (!head) return null;
      const size = Number.parseInt(head[1]!, 16);
      if (size > MAX_SIGNED_CHUNK) return null;
      const dataStart = lineEnd + 2;
      if (this.pending.length < dataStart + size + 2) return Buffer.concat(out);
      if (this.pending.toString("latin1", dataStart + size, dataStart + size + 2) !== "\r\n") return null;
      const data = this.pending.subarray(dataStart, dataStart + size);
      this.previous = chunkSignature(this.key, this.stamp, this.scope, this.previous, data);
      out.push(Buffer.from(`${head[1]};chunk-signature=${this.previous}\r\n`, "latin1"), data, Buffer.from("\r\n"));
      this.pending = this.pending.subarray(dataStart + size + 2);
      if (size === 0) this.done = true;
    }
  }

  /** The body ended: null unless it ended with the last (empty) chunk. */
  end(): Buffer | null {
    return this.done && this.pending.length === 0 ? Buffer.alloc(0) : null;
  }
}

/** A whole STREAMING-AWS4-HMAC-SHA256-PAYLOAD body signed again from `seed` (null: not that framing). */
export function resignChunks(body: Buffer, key: Buffer, stamp: string, scope: AwsScope, seed: string): Buffer | null {
  const resigner = new ChunkResigner(key, stamp, scope, seed);
  const out = resigner.push(body);
  return out !== null && resigner.end() !== null ? out : null;
}

/** Signing names that differ from the host's first label. */
const SIGNING_NAMES: Record<string, string> = {
  "bedrock-runtime": "bedrock",
  "bedrock-agent-runtime": "bedrock",
  "bedrock-agent": "bedrock",
  email: "ses",
};

const REGION = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/;

/**
 * Region and signing name from an AWS host: s3.eu-west-1.amazonaws.com, bucket.s3.eu-west-1…,
 * s3-eu-west-1…, s3.amazonaws.com (us-east-1), sts.amazonaws.com, bedrock-runtime.us-east-1….
 * Null when the host says neither (then the service's --region and --aws-service must).
 */
export function scopeFromHost(host: string): Partial<AwsScope> | null {
  const match = /^(.*)\.amazonaws\.com(\.cn)?$/.exec(host.toLowerCase());
  if (!match) return null;
  const labels = match[1]!.split(".");
  // S3: virtual-hosted (bucket.s3…), dual-stack, and the old dashed regional form.
  const s3 = labels.findIndex((l) => l === "s3" || l.startsWith("s3-"));
  if (s3 >= 0) {
    const dashed = labels[s3]!.slice(3);
    const rest = labels.slice(s3 + 1).filter((l) => l !== "dualstack" && l !== "s3-accelerate");
    const region = REGION.test(dashed) ? dashed : rest.find((l) => REGION.test(l));
    return { service: "s3", region: region ?? "us-east-1" };
  }
  // The service is the label before the region (api-id.execute-api.us-east-1…), else the first.
  const at = labels.findIndex((l) => REGION.test(l));
  const name = at > 0 ? labels[at - 1]! : labels[0]!;
  return { service: SIGNING_NAMES[name] ?? name, region: at >= 0 ? labels[at]! : "us-east-1" };
}
