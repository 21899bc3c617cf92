// AWS SigV4 re-signing through the compiled binary (issue 16 item 3): the real AWS SDK for
// JavaScript runs as the agent under `agent-vault run` with only placeholders (AKIA…), its HTTPS
// goes through the proxy, and a fake AWS (test/support/fake-aws.ts) checks every signature with
// @smithy/signature-v4 and the REAL keys: STS GetCallerIdentity, S3 PutObject/GetObject on a
// virtual-hosted bucket, a streamed (aws-chunked, trailing checksum) upload, a presigned URL
// fetched with curl. The agent's own placeholder signature, sent straight to the fake, is refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { S3Client, GetObjectCommand } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { recordingCli, type TempHome, tempHome } from "../support/binary.ts";
import { startFakeAws, type FakeAws } from "../support/fake-aws.ts";
import { runCleanups } from "../support/process.ts";
import { type Server, startServer } from "../support/server.ts";

const scratch = mkdtempSync(join(tmpdir(), "av-sigv4-"));
const cleanups: (() => Promise<void> | void)[] = [];
const REAL = { accessKeyId: `AKIA${randomBytes(8).toString("hex").toUpperCase()}`, secretAccessKey: `realSecret${randomBytes(15).toString("base64url")}` };
const HOSTS = ["sts.amazonaws.com", "agent-bucket.s3.eu-west-1.amazonaws.com"];
const AGENT_SCRIPT = resolve(import.meta.dir, "../support/aws-agent.cjs");
const outputs: string[] = [];

let H: TempHome;
let F: FakeAws;
let S: Server;
let ENV: Record<string, string>;
const { ok } = recordingCli(() => H, () => ENV, outputs);

type Step = Record<string, unknown> & { step: string; error?: string };

/** The SDK as the agent, under run: one JSON line per step. */
async function agent(steps: readonly string[]): Promise<Step[]> {
  const result = await H.run(["run", "--no-sandbox", "--quiet", "--", "node", AGENT_SCRIPT, ...steps], { env: { ...ENV, AWS_AGENT_MODULES: resolve(import.meta.dir, "../../package.json") } });
  outputs.push(result.stdout, result.stderr);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim().split("\n").filter(Boolean).map((line) => JSON.parse(line) as Step);
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
  await ok(["vault", "service", "add", "--name", "s3", "--host", "*.s3.eu-west-1.amazonaws.com", "--auth-type", "aws-sigv4", "--access-key-id-key", "AWS_ACCESS_KEY_ID", "--secret-key", "AWS_SECRET_ACCESS_KEY"]);
  S = await startServer(H, ENV, cleanups);
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
    expect(seen.map((v) => `${v.method} ${v.host}`)).toEqual(["POST sts.amazonaws.com", "PUT agent-bucket.s3.eu-west-1.amazonaws.com", "GET agent-bucket.s3.eu-west-1.amazonaws.com"]);
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
    const error = await direct.send(new GetObjectCommand({ Bucket: "agent-bucket", Key: "hello.txt" })).then(() => null, (e: Error & { $metadata?: { httpStatusCode?: number } }) => e);
    expect(error?.$metadata?.httpStatusCode).toBe(403);
    expect(F.refusals.slice(refusals)).toEqual(["unknown access key id"]);
  }, 30_000);
});
