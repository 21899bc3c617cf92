// SigV4 re-signing cost per request (issue 16 item 3), in-process: what steps/sigv4.ts adds to a
// request to an aws-sigv4 service beyond the other auth types (opening the keys from the vault is
// the same for every type and not counted). Each sample is the mean over a batch of requests on a
// fresh flow, so the flow's construction is included (a few hundred ns).
//
//   S3 GetObject, header form, UNSIGNED-PAYLOAD        canonical request + signing key + HMAC
//   STS POST, body hash computed (44 B, 64 KiB, 1 MiB)  + SHA-256 of the body (exchange's signBody)
//   presigned URL                                      query form: parse, rebuild, sign
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD, 1 MiB in 64 KiB chunks   + one HMAC and SHA-256 per chunk
//
//   bun scripts/bench-sigv4.ts
import { makeFlow } from "../src/proxy/flow.ts";
import { signAws } from "../src/proxy/steps/sigv4.ts";
import { summarize } from "./bench/stats.ts";

const AUTH = { type: "aws-sigv4" as const, access_key_id: "AWS_ACCESS_KEY_ID", secret_key: "AWS_SECRET_ACCESS_KEY" };
const VALUES: Record<string, string> = { AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE", AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const value = (key: string) => VALUES[key]!;

function flowFor(method: string, host: string, path: string, headers: Record<string, string>) {
  const flow = makeFlow({
    via: "tunnel",
    host,
    port: 443,
    method,
    path,
    headers: { host, "user-agent": "aws-sdk-js/3", "content-type": "application/octet-stream", ...headers },
    credential: undefined,
  });
  flow.service = { name: "aws", host, auth: AUTH, enabled: true, created_at: "2026-01-01T00:00:00.000Z" };
  return flow;
}

function chunked(total: number, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < total; at += size) {
    const data = Buffer.alloc(Math.min(size, total - at), 7);
    parts.push(Buffer.from(`${data.length.toString(16)};chunk-signature=${"0".repeat(64)}\r\n`), data, Buffer.from("\r\n"));
  }
  parts.push(Buffer.from(`0;chunk-signature=${"0".repeat(64)}\r\n\r\n`));
  return Buffer.concat(parts);
}

const CASES: { name: string; batch: number; run: () => void }[] = [
  {
    name: "S3 GetObject, header form, UNSIGNED-PAYLOAD",
    batch: 2000,
    run: () =>
      signAws(flowFor("GET", "bkt.s3.eu-west-1.amazonaws.com", "/dir/key.txt?x-id=GetObject", { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-user-agent": "aws-sdk-js/3" }), AUTH, value),
  },
  ...[44, 64 * 1024, 1024 * 1024].map((size) => {
    const body = Buffer.alloc(size, 1);
    return {
      name: `STS POST, the body's hash computed (${size >= 1024 ? `${size / 1024} KiB` : `${size} B`})`,
      batch: size > 100_000 ? 50 : 1000,
      run: () => {
        const flow = flowFor("POST", "sts.amazonaws.com", "/", { "content-type": "application/x-www-form-urlencoded" });
        signAws(flow, AUTH, value);
        flow.signBody!(body);
      },
    };
  }),
  {
    name: "presigned URL (query form)",
    batch: 2000,
    run: () =>
      signAws(
        flowFor(
          "GET",
          "bkt.s3.eu-west-1.amazonaws.com",
          "/key.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAPLACEHOLDER%2F20260101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=00&x-id=GetObject",
          {},
        ),
        AUTH,
        value,
      ),
  },
  (() => {
    const body = chunked(1024 * 1024, 64 * 1024);
    return {
      name: "signed chunks, 1 MiB in 64 KiB chunks (17 signatures)",
      batch: 50,
      run: () => {
        const flow = flowFor("PUT", "bkt.s3.eu-west-1.amazonaws.com", "/big", {
          "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
          "content-encoding": "aws-chunked",
          "x-amz-decoded-content-length": String(1024 * 1024),
        });
        signAws(flow, AUTH, value);
        flow.signBody!(body);
      },
    };
  })(),
];

const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`);
console.log("| SigV4 re-signing, per request | batches × requests | median | p90 | min – max |");
console.log("|---|---:|---:|---:|---:|");
for (const c of CASES) {
  for (let i = 0; i < c.batch; i++) c.run(); // warm-up
  const samples: number[] = [];
  for (let s = 0; s < 30; s++) {
    const start = performance.now();
    for (let i = 0; i < c.batch; i++) c.run();
    samples.push((performance.now() - start) / c.batch);
  }
  const r = summarize(samples);
  console.log(`| ${c.name} | 30 × ${c.batch} | ${fmt(r.median)} | ${fmt(r.p90)} | ${fmt(r.min)} – ${fmt(r.max)} |`);
}
