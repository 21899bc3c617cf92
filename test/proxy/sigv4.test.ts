// The signer (src/proxy/sigv4.ts, steps/sigv4.ts) against @smithy/signature-v4, the AWS SDK's own:
// what the proxy signs must verify there with the real keys, in each form (headers with a declared
// hash, with the body's hash, presigned query, signed chunks), and the agent's placeholder
// signature must not.
import { describe, expect, test } from "bun:test";
import { type IncomingMessage } from "node:http";
import { SignatureV4 } from "@smithy/signature-v4";
import { makeFlow } from "../../src/proxy/flow.ts";
import { resignChunks, scopeFromHost, sha256Hex } from "../../src/proxy/sigv4.ts";
import { signAws } from "../../src/proxy/steps/sigv4.ts";
import { verifyRequest } from "../support/fake-aws.ts";

const REAL = { accessKeyId: "AKIAREALREALREAL1234", secretAccessKey: "real/secret+KEY0123456789abcdefghijklmnop" };
const AUTH = { type: "aws-sigv4" as const, access_key_id: "AWS_ACCESS_KEY_ID", secret_key: "AWS_SECRET_ACCESS_KEY" };
const values: Record<string, string> = { AWS_ACCESS_KEY_ID: REAL.accessKeyId, AWS_SECRET_ACCESS_KEY: REAL.secretAccessKey };

function flowFor(method: string, host: string, path: string, headers: Record<string, string>) {
  const flow = makeFlow({ via: "tunnel", host, port: 443, method, path, headers: { host, ...headers }, credential: undefined });
  flow.service = { name: "aws", host, auth: AUTH, enabled: true, created_at: new Date().toISOString() };
  return flow;
}

function asRequest(flow: ReturnType<typeof flowFor>): IncomingMessage {
  return { method: flow.method, url: flow.path, headers: flow.headers } as unknown as IncomingMessage;
}

describe("SigV4 signing verifies with the SDK's signer", () => {
  test("region and signing name from the host", () => {
    expect(scopeFromHost("s3.eu-west-1.amazonaws.com")).toEqual({ service: "s3", region: "eu-west-1" });
    expect(scopeFromHost("my.bucket.s3.eu-west-1.amazonaws.com")).toEqual({ service: "s3", region: "eu-west-1" });
    expect(scopeFromHost("bucket.s3-us-west-2.amazonaws.com")).toEqual({ service: "s3", region: "us-west-2" });
    expect(scopeFromHost("bucket.s3.amazonaws.com")).toEqual({ service: "s3", region: "us-east-1" });
    expect(scopeFromHost("sts.amazonaws.com")).toEqual({ service: "sts", region: "us-east-1" });
    expect(scopeFromHost("bedrock-runtime.us-east-1.amazonaws.com")).toEqual({ service: "bedrock", region: "us-east-1" });
    expect(scopeFromHost("lambda.us-west-2.amazonaws.com")).toEqual({ service: "lambda", region: "us-west-2" });
    expect(scopeFromHost("a1b2c3.execute-api.eu-central-1.amazonaws.com")).toEqual({ service: "execute-api", region: "eu-central-1" });
    expect(scopeFromHost("evil.example.com")).toBeNull();
  });

  test("S3 PUT with a declared hash, odd path and query characters", async () => {
    const body = Buffer.from("hello world");
    const flow = flowFor("PUT", "bkt.s3.eu-west-1.amazonaws.com", "/a%20b/c%2Bd~e!.txt?tagging=&x-id=PutObject&b=1%2F2", {
      "x-amz-content-sha256": sha256Hex(body),
      "content-type": "text/plain",
      "x-amz-meta-who": "  agent   x ",
      authorization: "AWS4-HMAC-SHA256 Credential=AKIAPLACEHOLDER/...",
    });
    delete flow.headers.authorization;
    signAws(flow, AUTH, (k) => values[k]!);
    expect(flow.answer).toBeUndefined();
    expect(await verifyRequest(asRequest(flow), body, REAL)).toMatchObject({ mode: "header" });
    // The same request signed by a placeholder secret does not verify.
    await expect(verifyRequest(asRequest(flow), body, { ...REAL, secretAccessKey: "x".repeat(40) })).rejects.toThrow("signature does not match");
  });

  test("STS POST without a declared hash: signed over the body's hash; Lambda path double-encoded", async () => {
    const body = Buffer.from("Action=GetCallerIdentity&Version=2011-06-15");
    const flow = flowFor("POST", "sts.amazonaws.com", "/", { "content-type": "application/x-www-form-urlencoded" });
    signAws(flow, AUTH, (k) => values[k]!);
    expect(flow.signBody).toBeDefined();
    expect(flow.signBody!(body)).toEqual(body);
    expect(await verifyRequest(asRequest(flow), body, REAL)).toMatchObject({ mode: "header" });
    const lambda = flowFor("GET", "lambda.us-west-2.amazonaws.com", "/2015-03-31/functions/my%3Afn/./x/../invocations", {});
    signAws(lambda, AUTH, (k) => values[k]!);
    lambda.signBody!(Buffer.alloc(0));
    expect(await verifyRequest(asRequest(lambda), Buffer.alloc(0), REAL)).toMatchObject({ mode: "header" });
  });

  test("a payload hash it cannot sign, and a host that is not AWS's without --aws-service: one clear answer, nothing signed", () => {
    const odd = flowFor("PUT", "bkt.s3.eu-west-1.amazonaws.com", "/k", { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" });
    signAws(odd, AUTH, (k) => values[k]!);
    expect(odd.answer).toMatchObject({ code: "invalid_request", status: 400 });
    expect(odd.headers.authorization).toBeUndefined();
    const elsewhere = flowFor("GET", "storage.example.com", "/k", {});
    signAws(elsewhere, AUTH, (k) => values[k]!);
    expect(elsewhere.answer?.message).toContain("give the service --aws-service and --region");
    const named = flowFor("GET", "storage.example.com", "/k", { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" });
    signAws(named, { ...AUTH, aws_service: "s3", region: "eu-west-1" }, (k) => values[k]!);
    expect(String(named.headers.authorization)).toContain("/eu-west-1/s3/aws4_request");
  });

  test("a body held for a person is signed once allowed, not before (AWS refuses an old date)", async () => {
    const body = Buffer.from("held body");
    const flow = flowFor("PUT", "bkt.s3.eu-west-1.amazonaws.com", "/held", { "x-amz-content-sha256": sha256Hex(body) });
    flow.checkWholeBody = async () => null;
    signAws(flow, AUTH, (k) => values[k]!);
    expect(flow.headers.authorization).toBeUndefined();
    expect(flow.signBody!(body)).toEqual(body);
    expect(await verifyRequest(asRequest(flow), body, REAL)).toMatchObject({ mode: "header" });
  });

  test("a presigned URL is signed again in the query form", async () => {
    const flow = flowFor(
      "GET",
      "bkt.s3.eu-west-1.amazonaws.com",
      "/k.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAPLACEHOLDER%2F20200101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20200101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=00&x-id=GetObject",
      {},
    );
    signAws(flow, AUTH, (k) => values[k]!);
    expect(flow.path).not.toContain("AKIAPLACEHOLDER");
    // Signed again per request: it needs to live only a minute, whatever the agent asked.
    expect(flow.path).toContain("X-Amz-Expires=60");
    expect(await verifyRequest(asRequest(flow), Buffer.alloc(0), REAL)).toMatchObject({ mode: "presigned" });
  });

  test("signed chunks are signed again, chained from our seed", async () => {
    const chunks = [Buffer.alloc(70_000, 1), Buffer.from("tail")];
    const frame = (data: Buffer) => Buffer.concat([Buffer.from(`${data.length.toString(16)};chunk-signature=${"0".repeat(64)}\r\n`), data, Buffer.from("\r\n")]);
    const body = Buffer.concat([...chunks.map(frame), frame(Buffer.alloc(0))]);
    const flow = flowFor("PUT", "bkt.s3.eu-west-1.amazonaws.com", "/big", {
      "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "content-encoding": "aws-chunked",
      "x-amz-decoded-content-length": "70004",
    });
    signAws(flow, AUTH, (k) => values[k]!);
    const resigned = flow.signBody!(body);
    expect(Buffer.isBuffer(resigned)).toBe(true);
    expect((resigned as Buffer).length).toBe(body.length);
    expect(await verifyRequest(asRequest(flow), resigned as Buffer, REAL)).toMatchObject({ mode: "chunks" });
    expect(resignChunks(Buffer.from("zz;chunk-signature=1\r\n"), Buffer.alloc(32), "20260101T000000Z", { region: "us-east-1", service: "s3" }, "0")).toBeNull();
  });

  test("the SDK's own signature of a request verifies in the fake (the fake is not lenient to ours alone)", async () => {
    const signer = new SignatureV4({ credentials: REAL, region: "us-east-1", service: "sts", sha256: (await import("../support/fake-aws.ts")).NodeSha256 });
    const signed = await signer.sign({ method: "GET", protocol: "https:", hostname: "sts.amazonaws.com", path: "/", query: { Action: "GetCallerIdentity" }, headers: { host: "sts.amazonaws.com" } });
    const req = { method: "GET", url: "/?Action=GetCallerIdentity", headers: Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v])) } as unknown as IncomingMessage;
    expect(await verifyRequest(req, Buffer.alloc(0), REAL)).toMatchObject({ mode: "header" });
  });
});

test("a URL presigned by the SDK's S3 presigner verifies in the fake", async () => {
  const { S3Client, GetObjectCommand } = await import("@aws-sdk/client-s3");
  const { getSignedUrl } = await import("@aws-sdk/s3-request-presigner");
  const client = new S3Client({ region: "eu-west-1", credentials: REAL });
  const url = new URL(await getSignedUrl(client, new GetObjectCommand({ Bucket: "bkt", Key: "a b/k.txt" }), { expiresIn: 300 }));
  const req = { method: "GET", url: url.pathname + url.search, headers: { host: url.host } } as unknown as IncomingMessage;
  expect(await verifyRequest(req, Buffer.alloc(0), REAL)).toMatchObject({ mode: "presigned" });
});
