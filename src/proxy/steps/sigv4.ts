// Inject for an aws-sigv4 service: the agent signed with placeholder keys (run gave it AKIA… and a
// made-up secret), so its signature is worth nothing and is thrown away: Authorization (already
// dropped by stripHeaders), X-Amz-Date, X-Amz-Security-Token, and in a presigned URL every
// X-Amz-* signing parameter. The request is signed again with the real keys for the host it goes
// to, here or, when the payload's hash depends on the body, by the exchange once the body is read
// (flow.signBody). The signature goes only upstream: it is never logged or shown to the agent,
// and the secret itself never leaves this process (it only keys the HMAC).
import { problem } from "../../shared/answers.ts";
import { type Auth } from "../../vault/service.schema.ts";
import { answer, type Flow } from "../flow.ts";
import { patternsOf } from "../secrets.ts";
import {
  ALGORITHM,
  type AwsKeys,
  type AwsScope,
  amzDate,
  authorizationHeader,
  ChunkResigner,
  EMPTY_SHA256,
  parseQuery,
  resignChunks,
  scopeFromHost,
  sha256Hex,
  signRequest,
  STREAMING_SIGNED,
  UNSIGNED_PAYLOAD,
  uriEncode,
} from "../sigv4.ts";

type AwsAuth = Extract<Auth, { type: "aws-sigv4" }>;

/** Query parameters of a presigned URL that carry the agent's (placeholder) signature. */
const PRESIGN_PARAMS = new Set(["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"]);

/** Payload hashes signed as declared: the upstream checks them against the body it gets. */
const DECLARED_PAYLOAD = /^([0-9a-f]{64}|UNSIGNED-PAYLOAD|STREAMING-UNSIGNED-PAYLOAD-TRAILER)$/;

/**
 * A presigned URL's lifetime upstream. The proxy signs it again for each request, so it needs to
 * live only as long as the request takes to start; a short life makes one that an upstream echoed
 * back worthless soon (it would work without the proxy, past the session's end).
 */
const PRESIGN_SECONDS = 60;

/** Headers signed besides every x-amz-*: the ones SDKs sign that the proxy never changes. */
const SIGNED_PLAIN = ["host", "content-type", "content-md5", "content-encoding"];

export function signAws(flow: Flow, auth: AwsAuth, value: (key: string) => string | null): void {
  const accessKeyId = value(auth.access_key_id);
  const secretAccessKey = value(auth.secret_key);
  const sessionToken = auth.session_token ? value(auth.session_token) : undefined;
  if (accessKeyId === null || secretAccessKey === null || sessionToken === null) return;
  const keys: AwsKeys = { accessKeyId, secretAccessKey, sessionToken };
  // Our signature is as good as the key for this request (and a presigned URL for a while): a
  // response that echoes it back is scrubbed of it like a value, under the secret's name.
  const scrubbed = flow.scrubBody;
  const signatures: string[] = [];
  if (scrubbed) flow.scrubBody = () => [...scrubbed(), ...signatures.flatMap((sig) => patternsOf(auth.secret_key, sig))];
  const sign = (signature: string) => void signatures.push(signature);
  const fromHost = scopeFromHost(flow.host);
  const service = auth.aws_service ?? fromHost?.service;
  if (!service) {
    return answer(flow, "invalid_request", `service "${flow.service!.name}" signs for AWS, but ${flow.host} is not an AWS host name; give the service --aws-service and --region`);
  }
  const scope: AwsScope = { service, region: auth.region ?? fromHost?.region ?? "us-east-1" };
  const q = flow.path.indexOf("?");
  const path = q < 0 ? flow.path : flow.path.slice(0, q);
  const query = parseQuery(q < 0 ? "" : flow.path.slice(q + 1));
  const declared = headerText(flow, "x-amz-content-sha256");
  delete flow.headers["x-amz-date"];
  delete flow.headers["x-amz-security-token"];
  delete flow.headers["x-amz-content-sha256"];
  if (query.some(([name]) => name === "X-Amz-Signature")) {
    sign(presign(flow, path, query, keys, scope));
    return;
  }
  if (declared !== undefined && DECLARED_PAYLOAD.test(declared)) {
    // A body checked whole first (held for a person, judged for `_method`) is signed once let go:
    // AWS refuses a date 15 minutes old.
    if (flow.checkWholeBody) {
      flow.signBody = (body) => {
        sign(signHeaders(flow, path, query, keys, scope, declared, true).signature);
        return body;
      };
      return;
    }
    sign(signHeaders(flow, path, query, keys, scope, declared, true).signature);
    return;
  }
  if (declared === STREAMING_SIGNED) {
    // Each chunk carries a signature chained from the seed: every chunk is signed again from
    // ours, over the whole body once read, or as it streams past the guard's buffer.
    const notFramed = () => problem("invalid_request", `the body is not ${STREAMING_SIGNED} framing (size;chunk-signature=… lines), so it cannot be signed`);
    const seed = () => {
      const signed = signHeaders(flow, path, query, keys, scope, STREAMING_SIGNED, true);
      sign(signed.signature);
      return signed;
    };
    flow.signBody = (body) => {
      if (body.length === 0) return problem("invalid_request", `a ${STREAMING_SIGNED} request needs its chunked body`);
      const signed = seed();
      return resignChunks(body, signed.key, signed.stamp, scope, signed.signature) ?? notFramed();
    };
    flow.signStream = () => {
      const signed = seed();
      const resigner = new ChunkResigner(signed.key, signed.stamp, scope, signed.signature);
      return { push: (piece) => resigner.push(piece) ?? notFramed(), end: () => resigner.end() ?? notFramed() };
    };
    return;
  }
  if (declared !== undefined) {
    // The agent's text is not repeated: it would reach the request log.
    return answer(
      flow,
      "invalid_request",
      `x-amz-content-sha256 is not a payload hash the proxy can sign (a SHA-256 in hex, ${UNSIGNED_PAYLOAD}, ${STREAMING_SIGNED} or STREAMING-UNSIGNED-PAYLOAD-TRAILER)`,
    );
  }
  // No declared hash (STS, Lambda, Bedrock): the hash of the body as sent, once it is read.
  // S3 wants the header; the others take it too, but do not need it.
  flow.signBody = (body) => {
    sign(signHeaders(flow, path, query, keys, scope, body.length === 0 ? EMPTY_SHA256 : sha256Hex(body), service === "s3").signature);
    return body;
  };
}

function headerText(flow: Flow, name: string): string | undefined {
  const header = flow.headers[name];
  return header === undefined ? undefined : Array.isArray(header) ? header.join(",") : header;
}

function signedHeaderValues(flow: Flow): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(flow.headers)) {
    if (!name.startsWith("x-amz-") && !SIGNED_PLAIN.includes(name)) continue;
    const text = headerText(flow, name);
    if (text !== undefined) out[name] = text;
  }
  return out;
}

function signHeaders(flow: Flow, path: string, query: [string, string][], keys: AwsKeys, scope: AwsScope, payloadHash: string, sendHash: boolean): { key: Buffer; stamp: string; signature: string } {
  const { stamp } = amzDate(new Date());
  flow.headers["x-amz-date"] = stamp;
  if (keys.sessionToken) flow.headers["x-amz-security-token"] = keys.sessionToken;
  if (sendHash) flow.headers["x-amz-content-sha256"] = payloadHash;
  const signed = signRequest({ method: flow.method, path, query, headers: signedHeaderValues(flow) }, keys, scope, payloadHash, stamp);
  flow.headers.authorization = authorizationHeader(signed.credential, signed.signedHeaders, signed.signature);
  return { key: signed.key, stamp, signature: signed.signature };
}

/** A presigned URL: the query form, signed again now, to live PRESIGN_SECONDS at most; the signature. */
function presign(flow: Flow, path: string, query: [string, string][], keys: AwsKeys, scope: AwsScope): string {
  const asked = Number(query.find(([name]) => name === "X-Amz-Expires")?.[1] ?? "");
  const expires = Number.isInteger(asked) && asked >= 1 ? Math.min(asked, PRESIGN_SECONDS) : PRESIGN_SECONDS;
  const { stamp, day } = amzDate(new Date());
  const kept = query.filter(([name]) => !PRESIGN_PARAMS.has(name));
  const headers: Record<string, string> = { host: headerText(flow, "host") ?? flow.host };
  const params: [string, string][] = [
    ...kept,
    ["X-Amz-Algorithm", ALGORITHM],
    ["X-Amz-Credential", `${keys.accessKeyId}/${day}/${scope.region}/${scope.service}/aws4_request`],
    ["X-Amz-Date", stamp],
    ["X-Amz-Expires", String(expires)],
    ["X-Amz-SignedHeaders", "host"],
    ...(keys.sessionToken ? [["X-Amz-Security-Token", keys.sessionToken] as [string, string]] : []),
  ];
  // S3 presigns leave the payload unsigned; the others sign the (empty) body of a GET.
  const signed = signRequest({ method: flow.method, path, query: params, headers }, keys, scope, scope.service === "s3" ? UNSIGNED_PAYLOAD : EMPTY_SHA256, stamp);
  params.push(["X-Amz-Signature", signed.signature]);
  flow.path = `${path}?${params.map(([name, v]) => `${uriEncode(name)}=${uriEncode(v)}`).join("&")}`;
  return signed.signature;
}
