// AWS SigV4 re-signing through the compiled binary (issue 16 item 3): the real AWS SDK for
// JavaScript runs as the agent under `agent-vault run` with only placeholders (AKIA…), its HTTPS
// goes through the proxy, and a fake AWS (test/support/fake-aws.ts) checks every signature with
// @smithy/signature-v4 and the REAL keys: STS GetCallerIdentity, S3 PutObject/GetObject on a
// virtual-hosted bucket, a streamed (aws-chunked, trailing checksum) upload, a presigned URL
// fetched with curl. The agent's own placeholder signature, sent straight to the fake, is refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { S3Client, GetObjectCommand } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { recordingCli, type TempHome, tempHome } from "../support/binary.ts";
import { type FakeAws, s3ServiceArgs, startFakeAws } from "../support/fake-aws.ts";
import { runCleanups } from "../support/process.ts";
import { startServer } from "../support/server.ts";

const scratch = mkdtempSync(join(tmpdir(), "av-sigv4-"));
const cleanups: (() => Promise<void> | void)[] = [];
const REAL = { accessKeyId: `AKIA${randomBytes(8).toString("hex").toUpperCase()}`, secretAccessKey: `realSecret${randomBytes(15).toString("base64url")}` };
const HOSTS = ["sts.us-east-1.amazonaws.com", "agent-bucket.s3.eu-west-1.amazonaws.com"];
const AGENT_SCRIPT = resolve(import.meta.dir, "../support/aws-agent.cjs");
const outputs: string[] = [];

let H: TempHome;
let F: FakeAws;
let ENV: Record<string, string>;
const { ok } = recordingCli(
  () => H,
  () => ENV,
  outputs,
);

type Step = Record<string, unknown> & { step: string; error?: string };

/** The SDK as the agent, under run: one JSON line per step. */
async function agent(steps: readonly string[]): Promise<Step[]> {
  const result = await H.run(["run", "--no-sandbox", "--quiet", "--", "node", AGENT_SCRIPT, ...steps], { env: { ...ENV, AWS_AGENT_MODULES: resolve(import.meta.dir, "../../package.json") } });
  outputs.push(result.stdout, result.stderr);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Step);
}

beforeAll(async () => {
  F = await startFakeAws(mkdtempSync(join(scratch, "aws-")), REAL);
  cleanups.push(() => F.close());
  H = await tempHome();
  cleanups.push(() => H.cleanup());
  ENV = { AGENT_VAULT_CONNECT_TO: HOSTS.map((h) => `${h}:443:127.0.0.1:${F.upstream.port}`).join(","), AGENT_VAULT_UPSTREAM_CA: F.upstream.caFile };
  await ok(["vault", "credential", "set", "AWS_ACCESS_KEY_ID=-"], REAL.accessKeyId);
  await ok(["vault", "credential", "set", "AWS_SECRET_ACCESS_KEY=-"], REAL.secretAccessKey);
  await ok(["vault", "service", "add", "--template", "aws-sts"]);
  await ok(s3ServiceArgs());
  await startServer(H, ENV, cleanups);
}, 60_000);

afterAll(async () => {
  const log = existsSync(join(H.dir, "requests.log")) ? readFileSync(join(H.dir, "requests.log"), "utf8") : "";
  await runCleanups(cleanups);
  // Nothing the agent could read carried a real key: its output, run's, the CLI's, the log.
  for (const text of [...outputs, log]) {
    expect(text).not.toContain(REAL.secretAccessKey);
    expect(text).not.toContain(REAL.accessKeyId);
  }
  rmSync(scratch, { recursive: true, force: true });
}, 30_000);

describe("the AWS SDK as the agent, signed again by the proxy", () => {
  test("run gives AWS placeholders shaped like real keys", async () => {
    const [env] = await agent(["env"]);
    expect(env!.id).toMatch(/^AKIA[A-Z0-9]{16}$/);
    expect(env!.secret).toMatch(/^[A-Za-z0-9]{40}$/);
    expect(env!.token).toBeNull();
    expect(env!.id).not.toBe(REAL.accessKeyId);
  }, 30_000);

  test("STS GetCallerIdentity and S3 PutObject/GetObject verify upstream with the real keys", async () => {
    const before = F.verified.length;
    const steps = await agent(["sts", "put"]);
    expect(steps[0]).toEqual({ step: "sts", account: "123456789012", arn: "arn:aws:iam::123456789012:user/agent" });
    expect(steps[1]).toEqual({ step: "put", body: "hello from the agent" });
    const seen = F.verified.slice(before);
    expect(seen.map((v) => `${v.method} ${v.host}`)).toEqual(["POST sts.us-east-1.amazonaws.com", "PUT agent-bucket.s3.eu-west-1.amazonaws.com", "GET agent-bucket.s3.eu-west-1.amazonaws.com"]);
    expect(seen[0]!.payload).toMatch(/^[0-9a-f]{64}$/);
  }, 60_000);

  test("a streamed PutObject (aws-chunked with a trailing checksum) passes the guard and verifies", async () => {
    const before = F.upstream.received.length;
    const [step] = await agent(["stream"]);
    expect(step).toEqual({ step: "stream", length: 200_000 });
    const put = F.upstream.received.slice(before).find((r) => r.method === "PUT")!;
    expect(String(put.headers["content-encoding"])).toContain("aws-chunked");
    expect(String(put.headers["x-amz-content-sha256"])).toBe("STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    expect(F.objects.get("agent-bucket.s3.eu-west-1.amazonaws.com/upload.bin")!.equals(Buffer.alloc(200_000, "s"))).toBe(true);
  }, 60_000);

  test("a 9 MiB streamed PutObject: its aws-chunked payload is checked as it streams past the guard's buffer", async () => {
    const [step] = await agent(["stream-big"]);
    expect(step).toEqual({ step: "stream-big", length: 9 * 1024 * 1024 });
    expect(F.objects.get("agent-bucket.s3.eu-west-1.amazonaws.com/upload.bin")!.equals(Buffer.alloc(9 * 1024 * 1024, "s"))).toBe(true);
  }, 60_000);

  test("the guard finds a value in an aws-chunked body past 8 MiB though the framing splits it; none of it went upstream", async () => {
    const half = REAL.secretAccessKey.length / 2;
    const payloads = [Buffer.concat([Buffer.alloc(9 * 1024 * 1024, "p"), Buffer.from(REAL.secretAccessKey.slice(0, half))]), Buffer.from(REAL.secretAccessKey.slice(half))];
    const frame = (d: Buffer) => Buffer.concat([Buffer.from(`${d.length.toString(16)}\r\n`), d, Buffer.from("\r\n")]);
    const file = join(scratch, "exfil.bin");
    writeFileSync(file, Buffer.concat([...payloads.map(frame), Buffer.from("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n")]));
    const wireBefore = F.upstream.wire.length;
    const script = `curl -sS -w "\\n%{http_code}\\n" -X PUT --data-binary @${file} -H "x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER" -H "content-encoding: aws-chunked" -H "x-amz-trailer: x-amz-checksum-crc32" https://agent-bucket.s3.eu-west-1.amazonaws.com/exfil.bin`;
    const result = await H.run(["run", "--no-sandbox", "--quiet", "--", "sh", "-c", script], { env: ENV });
    outputs.push(result.stdout, result.stderr);
    expect(result.stdout, result.stderr).toContain("credential_exfiltration");
    const upstream = Buffer.concat(F.upstream.wire.slice(wireBefore).map((w) => w.data)).toString("latin1");
    expect(upstream).not.toContain(REAL.secretAccessKey.slice(0, half));
    expect(F.objects.has("agent-bucket.s3.eu-west-1.amazonaws.com/exfil.bin")).toBe(false);
  }, 60_000);

  test("aws-chunked framing with no Content-Encoding is read framed by the guard, as S3 reads it (by x-amz-content-sha256)", async () => {
    const frame = (d: Buffer) => Buffer.concat([Buffer.from(`${d.length.toString(16)};chunk-signature=${"0".repeat(64)}\r\n`), d, Buffer.from("\r\n")]);
    const small = join(scratch, "exfil-small.bin");
    // The value three bytes a chunk: no piece of it is long enough to be found in the raw bytes.
    const pieces = (REAL.secretAccessKey.match(/.{1,3}/g) ?? []).map((p) => frame(Buffer.from(p)));
    writeFileSync(small, Buffer.concat([...pieces, frame(Buffer.alloc(0))]));
    const bare = await H.run(
      [
        "run",
        "--no-sandbox",
        "--quiet",
        "--",
        "sh",
        "-c",
        `curl -sS -X PUT --data-binary @${small} -H "x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER" https://agent-bucket.s3.eu-west-1.amazonaws.com/exfil-small.bin`,
      ],
      { env: ENV },
    );
    outputs.push(bare.stdout, bare.stderr);
    expect(bare.stdout, bare.stderr).toContain("credential_exfiltration");
    expect(F.objects.has("agent-bucket.s3.eu-west-1.amazonaws.com/exfil-small.bin")).toBe(false);
  }, 60_000);

  test("signed chunks past the guard's buffer (9 MiB in 64 KiB chunks) are signed again as they stream", async () => {
    const payload = randomBytes(9 * 1024 * 1024);
    const parts: Buffer[] = [];
    for (let at = 0; at < payload.length; at += 65_536) {
      const d = payload.subarray(at, at + 65_536);
      parts.push(Buffer.from(`${d.length.toString(16)};chunk-signature=${"0".repeat(64)}\r\n`), d, Buffer.from("\r\n"));
    }
    parts.push(Buffer.from(`0;chunk-signature=${"0".repeat(64)}\r\n\r\n`));
    const file = join(scratch, "chunks-big.bin");
    writeFileSync(file, Buffer.concat(parts));
    const before = F.verified.length;
    const script = `curl -sS -o /dev/null -w "%{http_code}" -X PUT --data-binary @${file} -H "x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD" -H "content-encoding: aws-chunked" -H "x-amz-decoded-content-length: ${payload.length}" https://agent-bucket.s3.eu-west-1.amazonaws.com/chunked-big.bin`;
    const result = await H.run(["run", "--no-sandbox", "--quiet", "--", "sh", "-c", script], { env: ENV });
    outputs.push(result.stdout, result.stderr);
    expect(result.stdout, result.stderr).toBe("200");
    expect(F.verified.slice(before).map((v) => v.mode)).toEqual(["chunks"]);
    expect(F.objects.get("agent-bucket.s3.eu-west-1.amazonaws.com/chunked-big.bin")!.equals(payload)).toBe(true);
  }, 60_000);

  test("a presigned URL, fetched with curl through the proxy, is signed again in the query form", async () => {
    await agent(["put"]);
    const before = F.verified.length;
    const [step] = await agent(["presign"]);
    expect(step!.body).toBe("hello from the agent");
    // The URL the agent holds names its placeholder; the one that went upstream, the real key.
    expect(String(step!.url)).toContain("X-Amz-Credential=AKIA");
    expect(String(step!.url)).not.toContain(REAL.accessKeyId);
    expect(F.verified.slice(before).map((v) => v.mode)).toEqual(["presigned"]);
  }, 60_000);

  test("the fake refuses the agent's own placeholder signature sent straight to it", async () => {
    const [env] = await agent(["env"]);
    const direct = new S3Client({
      region: "eu-west-1",
      endpoint: `https://localhost:${F.upstream.port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: String(env!.id), secretAccessKey: String(env!.secret) },
      requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: readFileSync(F.upstream.caFile) }) }),
      maxAttempts: 1,
    });
    const refusals = F.refusals.length;
    const error = await direct.send(new GetObjectCommand({ Bucket: "agent-bucket", Key: "hello.txt" })).then(
      () => null,
      (e: Error & { $metadata?: { httpStatusCode?: number } }) => e,
    );
    expect(error?.$metadata?.httpStatusCode).toBe(403);
    expect(F.refusals.slice(refusals)).toEqual(["unknown access key id"]);
  }, 30_000);

  test("curl with signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and an STS POST without a payload hash: signed again, verified", async () => {
    // The agent's chunk signatures are anything (zeros): the proxy signs every chunk from its seed.
    const data = [Buffer.alloc(65_536, "a"), Buffer.alloc(1000, "b")];
    const frame = (d: Buffer) => Buffer.concat([Buffer.from(`${d.length.toString(16)};chunk-signature=${"0".repeat(64)}\r\n`), d, Buffer.from("\r\n")]);
    const file = join(scratch, "chunks.bin");
    writeFileSync(file, Buffer.concat([...data.map(frame), frame(Buffer.alloc(0))]));
    const script = [
      `curl -sS -o /dev/null -w "%{http_code}\\n" -X PUT --data-binary @${file} -H "x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD" -H "content-encoding: aws-chunked" -H "x-amz-decoded-content-length: 66536" -H "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=00" https://agent-bucket.s3.eu-west-1.amazonaws.com/chunked.bin`,
      `curl -sS -d "Action=GetCallerIdentity&Version=2011-06-15" https://sts.us-east-1.amazonaws.com/`,
    ].join("; ");
    const before = F.verified.length;
    const result = await H.run(["run", "--no-sandbox", "--quiet", "--", "sh", "-c", script], { env: ENV });
    outputs.push(result.stdout, result.stderr);
    expect(result.stdout.startsWith("200\n"), result.stdout + result.stderr).toBe(true);
    expect(result.stdout).toContain("<Account>123456789012</Account>");
    expect(F.verified.slice(before).map((v) => `${v.mode} ${v.payload}`)).toEqual(["chunks STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "header "]);
    expect(F.objects.get("agent-bucket.s3.eu-west-1.amazonaws.com/chunked.bin")!.equals(Buffer.concat(data))).toBe(true);
  }, 60_000);
});

// The AWS CLI (botocore), where it is installed: it reads HTTPS_PROXY and AWS_CA_BUNDLE from run.
const hasAwsCli = Bun.spawnSync(["sh", "-c", "command -v aws"]).exitCode === 0;

describe.skipIf(!hasAwsCli)("the AWS CLI as the agent", () => {
  test("sts get-caller-identity, s3 cp up (20 MiB: multipart, 8 MiB aws-chunked parts) and s3api get-object down", async () => {
    const file = join(scratch, "big.bin");
    const data = randomBytes(20 * 1024 * 1024);
    writeFileSync(file, data);
    const before = F.verified.length;
    const script = [
      "aws sts get-caller-identity --region us-east-1 --output json",
      `aws s3 cp --region eu-west-1 --no-progress ${file} s3://agent-bucket/big.bin`,
      // One GET here; \`s3 cp\` down in ranged 8 MiB parts is tested in test/e2e/ranges.test.ts.
      `aws s3api get-object --region eu-west-1 --bucket agent-bucket --key big.bin ${file}.back >/dev/null`,
      `cmp ${file} ${file}.back && echo SAME`,
    ].join(" && ");
    const result = await H.run(["run", "--no-sandbox", "--quiet", "--", "sh", "-c", script], { env: { ...ENV, AWS_CONFIG_FILE: "/dev/null", AWS_SHARED_CREDENTIALS_FILE: "/dev/null" } });
    outputs.push(result.stdout, result.stderr);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('"Account": "123456789012"');
    expect(result.stdout).toContain("SAME");
    // STS, create, three parts, complete, get: every one verified with the real keys.
    expect(F.verified.length - before).toBe(7);
    expect(F.objects.get("agent-bucket.s3.eu-west-1.amazonaws.com/big.bin")!.equals(data)).toBe(true);
  }, 120_000);
});

describe("aws-sigv4 services from the command line", () => {
  test("bad flags are one clear line each and change nothing", async () => {
    const add = (extra: string[]) => H.run(["vault", "service", "add", "--name", "x", "--host", "x.amazonaws.com", "--auth-type", "aws-sigv4", ...extra]);
    const missing = await add(["--access-key-id-key", "AWS_ACCESS_KEY_ID"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--auth-type aws-sigv4 needs --secret-key");
    const region = await add(["--access-key-id-key", "AWS_ACCESS_KEY_ID", "--secret-key", "AWS_SECRET_ACCESS_KEY", "--region", "Mars"]);
    expect(region.code).toBe(2);
    expect(region.stderr).toContain("an AWS region looks like eu-west-1");
    const wrongType = await H.run(["vault", "service", "add", "--name", "x", "--host", "x.example.com", "--auth-type", "bearer", "--token-key", "T", "--secret-key", "S"]);
    expect(wrongType.code).toBe(2);
    expect(wrongType.stderr).toContain("--secret-key does not apply to --auth-type bearer");
    const listed = await H.run(["vault", "service", "list", "--json"]);
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((s) => s.name)).toEqual(["aws-sts", "s3"]);
    for (const r of [missing, region, wrongType]) expect(r.stderr.trim().split("\n").length).toBeLessThanOrEqual(2);
  }, 30_000);
});
