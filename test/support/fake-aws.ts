// A fake AWS for end-to-end tests: the local HTTPS upstream (upstream.ts) answering like STS and
// S3, that first checks every request's SigV4 signature (header form, presigned query form, and
// each chunk of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body) with @smithy/signature-v4 (the AWS SDK's
// own signer, which nobody here wrote) and the REAL keys. Anything else gets 403
// SignatureDoesNotMatch, echoing the access key id it was given as AWS does (scrubbing must catch it).
import { createHash, createHmac } from "node:crypto";
import { type IncomingMessage, type ServerResponse } from "node:http";
import { SignatureV4 } from "@smithy/signature-v4";
import { startUpstream, type Upstream } from "./upstream.ts";

/**
 * The argv that adds the tests' S3 service (every bucket in eu-west-1, SigV4 with the vault's
 * AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and AWS_SESSION_TOKEN when `sessionToken`).
 */
export function s3ServiceArgs(options: { sessionToken?: boolean } = {}): string[] {
  return [
    ...["vault", "service", "add", "--name", "s3", "--host", "*.s3.eu-west-1.amazonaws.com", "--auth-type", "aws-sigv4"],
    ...["--access-key-id-key", "AWS_ACCESS_KEY_ID", "--secret-key", "AWS_SECRET_ACCESS_KEY"],
    ...(options.sessionToken ? ["--session-token-key", "AWS_SESSION_TOKEN"] : []),
  ];
}

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface FakeAws {
  readonly upstream: Upstream;
  /** Objects stored by PUT, by host and path. */
  readonly objects: Map<string, Buffer>;
  /** Why each refused request was refused, in order. */
  readonly refusals: string[];
  /** Requests whose signature verified, in order: what was checked. */
  readonly verified: { host: string; method: string; url: string; mode: "header" | "presigned" | "chunks"; payload: string }[];
  close(): Promise<void>;
}

/** SHA-256 and HMAC-SHA256 in the shape @smithy/signature-v4 asks for (a hash constructor). */
export class NodeSha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash("sha256") : createHmac("sha256", typeof secret === "string" ? secret : Buffer.from(secret as Uint8Array));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === "string" ? data : Buffer.from(data as Uint8Array));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

function parseDate(stamp: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
  if (!m) throw new Error(`bad X-Amz-Date ${stamp}`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

function queryObject(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const pair of query.split("&").filter(Boolean)) {
    const eq = pair.indexOf("=");
    const name = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? "" : decodeURIComponent(pair.slice(eq + 1));
    const prior = out[name];
    out[name] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value];
  }
  return out;
}

class Refused extends Error {}

/** Checks a request's signature with the SDK's signer; returns what was verified or throws Refused. */
export async function verifyRequest(req: IncomingMessage, body: Buffer, keys: AwsCredentials): Promise<{ mode: "header" | "presigned" | "chunks"; payload: string; accessKeyId: string }> {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  const query = queryObject(q < 0 ? "" : url.slice(q + 1));
  const hostname = String(req.headers.host).replace(/:\d+$/, "");
  const presigned = typeof query["X-Amz-Signature"] === "string";
  let credential: string;
  let signedHeaders: string[];
  let given: string;
  let stamp: string;
  if (presigned) {
    credential = String(query["X-Amz-Credential"]);
    signedHeaders = String(query["X-Amz-SignedHeaders"]).split(";");
    given = String(query["X-Amz-Signature"]);
    stamp = String(query["X-Amz-Date"]);
  } else {
    const m = /^AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(String(req.headers.authorization ?? ""));
    if (!m) throw new Refused("no SigV4 Authorization header");
    credential = m[1]!;
    signedHeaders = m[2]!.split(";");
    given = m[3]!;
    stamp = String(req.headers["x-amz-date"] ?? "");
  }
  const [accessKeyId, , region, service] = credential.split("/");
  if (accessKeyId !== keys.accessKeyId) throw new Refused("unknown access key id");
  const date = parseDate(stamp);
  if (Math.abs(Date.now() - date.getTime()) > 15 * 60_000) throw new Refused("request time too skewed");
  if (keys.sessionToken) {
    const token = presigned ? query["X-Amz-Security-Token"] : req.headers["x-amz-security-token"];
    if (token !== keys.sessionToken) throw new Refused("missing or wrong security token");
  }
  const signer = new SignatureV4({ credentials: keys, region: region!, service: service!, sha256: NodeSha256, uriEscapePath: service !== "s3", applyChecksum: false });
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = req.headers[name];
    if (value === undefined) throw new Refused(`signed header ${name} is missing`);
    headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  let expected: string;
  let payload: string;
  if (presigned) {
    const rest = { ...query };
    delete rest["X-Amz-Signature"];
    payload = service === "s3" ? "UNSIGNED-PAYLOAD" : "";
    if (service === "s3") headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
    const signed = await signer.presign(
      { method: req.method!, protocol: "https:", hostname, path, query: rest, headers, body: undefined },
      {
        signingDate: date,
        expiresIn: Number(query["X-Amz-Expires"]),
        signableHeaders: new Set(signedHeaders),
        unsignableHeaders: new Set(["x-amz-content-sha256"]),
        unhoistableHeaders: new Set(["x-amz-content-sha256"]),
      },
    );
    expected = String(signed.query?.["X-Amz-Signature"]);
    if (date.getTime() + Number(query["X-Amz-Expires"]) * 1000 < Date.now()) throw new Refused("presigned URL expired");
  } else {
    payload = String(req.headers["x-amz-content-sha256"] ?? "");
    const signed = await signer.sign(
      { method: req.method!, protocol: "https:", hostname, path, query, headers, body: payload ? undefined : body },
      { signingDate: date, signableHeaders: new Set(signedHeaders) },
    );
    expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))![1]!;
  }
  if (expected !== given) throw new Refused("signature does not match");
  // The payload hash the signature covers must be the body's (S3 checks it the same way).
  if (/^[0-9a-f]{64}$/.test(payload) && createHash("sha256").update(body).digest("hex") !== payload) throw new Refused("x-amz-content-sha256 does not match the body");
  if (payload === "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") {
    await verifyChunks(body, signer, date, given);
    return { mode: "chunks", payload, accessKeyId };
  }
  return { mode: presigned ? "presigned" : "header", payload, accessKeyId };
}

/** Each chunk's signature, chained from the seed, checked with the SDK's string signer. */
async function verifyChunks(body: Buffer, signer: SignatureV4, date: Date, seed: string): Promise<void> {
  const scopeDay = toStamp(date).slice(0, 8);
  let at = 0;
  let previous = seed;
  for (;;) {
    const lineEnd = body.indexOf("\r\n", at);
    if (lineEnd < 0) throw new Refused("bad chunk framing");
    const m = /^([0-9a-f]+);chunk-signature=([0-9a-f]{64})$/.exec(body.toString("latin1", at, lineEnd));
    if (!m) throw new Refused("bad chunk framing");
    const size = Number.parseInt(m[1]!, 16);
    const data = body.subarray(lineEnd + 2, lineEnd + 2 + size);
    const scope = await scopeOf(signer);
    const stringToSign = ["AWS4-HMAC-SHA256-PAYLOAD", toStamp(date), `${scopeDay}/${scope}`, previous, createHash("sha256").digest("hex"), createHash("sha256").update(data).digest("hex")].join("\n");
    const expected = await signer.sign(stringToSign, { signingDate: date });
    if (expected !== m[2]) throw new Refused("chunk signature does not match");
    previous = expected;
    at = lineEnd + 2 + size + 2;
    if (size === 0) return;
  }
}

async function scopeOf(signer: SignatureV4): Promise<string> {
  const inner = signer as unknown as { regionProvider: () => Promise<string>; service: string };
  return `${await inner.regionProvider()}/${inner.service}/aws4_request`;
}

function toStamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/** The payload of an aws-chunked body (size[;ext]\r\n data \r\n … 0\r\n trailers \r\n). */
export function decodeAwsChunked(body: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf("\r\n", at);
    const size = Number.parseInt(body.toString("latin1", at, lineEnd).split(";")[0]!, 16);
    if (lineEnd < 0 || !Number.isInteger(size)) throw new Error(`not aws-chunked at byte ${at}: ${JSON.stringify(body.toString("latin1", at, at + 80))}`);
    if (size === 0) return Buffer.concat(out);
    out.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

function xml(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "content-type": "text/xml", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export async function startFakeAws(dir: string, keys: AwsCredentials): Promise<FakeAws> {
  const upstream = await startUpstream(dir);
  const parts = new Map<string, Map<number, Buffer>>();
  const fake: FakeAws = { upstream, objects: new Map(), refusals: [], verified: [], close: () => upstream.close() };
  upstream.handler = (req, res, body) => {
    void verifyRequest(req, body, keys).then(
      (checked) => {
        const host = String(req.headers.host).replace(/:\d+$/, "");
        fake.verified.push({ host, method: req.method!, url: req.url!, mode: checked.mode, payload: checked.payload });
        if (host.startsWith("sts.")) {
          return xml(
            res,
            200,
            `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/agent</Arn><UserId>AIDAFAKE</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
          );
        }
        const key = `${host}${req.url!.split("?")[0]}`;
        // An upstream that reflects what it got (as a debugging endpoint or a log viewer would):
        // the signature, the session token and the URL come back to whoever asked.
        if (key.includes("/echo")) {
          const reflected = JSON.stringify({ authorization: req.headers.authorization ?? null, token: req.headers["x-amz-security-token"] ?? null, url: req.url });
          res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reflected), "x-echo-authorization": String(req.headers.authorization ?? "") });
          return res.end(reflected);
        }
        // Multipart uploads (the AWS CLI's for files past 8 MiB): create, parts, complete.
        const params = new URLSearchParams(req.url!.split("?")[1] ?? "");
        if (req.method === "POST" && params.has("uploads")) {
          parts.set(key, new Map());
          return xml(res, 200, `<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>upload-1</UploadId></InitiateMultipartUploadResult>`);
        }
        if (req.method === "PUT" && params.has("partNumber")) {
          const coding = String(req.headers["content-encoding"] ?? "");
          const part = checked.payload.startsWith("STREAMING-") || coding.includes("aws-chunked") ? decodeAwsChunked(body) : body;
          parts.get(key)?.set(Number(params.get("partNumber")), part);
          res.writeHead(200, { etag: `"part-${params.get("partNumber")}"`, "content-length": 0 });
          return res.end();
        }
        if (req.method === "POST" && params.has("uploadId")) {
          const got = parts.get(key) ?? new Map<number, Buffer>();
          fake.objects.set(key, Buffer.concat([...got.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => b)));
          return xml(res, 200, `<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"done"</ETag></CompleteMultipartUploadResult>`);
        }
        if (req.method === "PUT") {
          const coding = String(req.headers["content-encoding"] ?? "");
          const streamed = checked.payload.startsWith("STREAMING-") || coding.includes("aws-chunked");
          try {
            fake.objects.set(key, streamed ? decodeAwsChunked(body) : body);
          } catch (error) {
            fake.refusals.push((error as Error).message);
            return xml(res, 400, "<Error><Code>IncompleteBody</Code></Error>");
          }
          res.writeHead(200, { etag: '"fake"', "content-length": 0 });
          return res.end();
        }
        const object = fake.objects.get(key);
        const stamp = { etag: '"fake"', "last-modified": new Date(0).toUTCString(), "content-type": "application/octet-stream" };
        if (req.method === "HEAD" && object) {
          res.writeHead(200, { ...stamp, "content-length": object.length });
          return res.end();
        }
        if (req.method === "GET" && object) {
          const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ""));
          if (range) {
            const start = Number(range[1]);
            const end = range[2] ? Math.min(Number(range[2]), object.length - 1) : object.length - 1;
            res.writeHead(206, { ...stamp, "content-length": end - start + 1, "content-range": `bytes ${start}-${end}/${object.length}` });
            return res.end(object.subarray(start, end + 1));
          }
          res.writeHead(200, { ...stamp, "content-length": object.length });
          return res.end(object);
        }
        return xml(res, 404, "<Error><Code>NoSuchKey</Code></Error>");
      },
      (error: Error) => {
        fake.refusals.push(error.message);
        // As AWS does: the access key id the request named comes back in the error.
        const named = /Credential=([^/,&]+)/.exec(`${String(req.headers.authorization ?? "")} ${decodeURIComponent(req.url ?? "")}`)?.[1] ?? "";
        xml(res, 403, `<Error><Code>SignatureDoesNotMatch</Code><Message>${error.message}</Message><AWSAccessKeyId>${named}</AWSAccessKeyId></Error>`);
      },
    );
    return true;
  };
  return fake;
}
