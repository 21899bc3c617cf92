// Ranged downloads through the compiled binary with scrubbing on (the default): a GET for one range
// goes upstream widened (steps/ranges.ts) and the agent gets exactly its bytes, 206, with the
// right Content-Range, every credential value masked in place so offsets stay the upstream's
// (response-range.ts). The upstream serves a body holding the injected value at known offsets and
// honours Range; clients are the raw tunnel client, curl -r, Python requests and, where installed,
// the AWS CLI's multipart `s3 cp` down from a fake S3. Anything else asked (a suffix range,
// several ranges) is answered whole, 200, scrubbed as before; a part the proxy cannot read whole
// is refused 502.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { asAgent } from "../support/attacker.ts";
import { recordingCli, type TempHome, tempHome } from "../support/binary.ts";
import { type FakeAws, s3ServiceArgs, startFakeAws } from "../support/fake-aws.ts";
import { runCleanups } from "../support/process.ts";
import { startServer } from "../support/server.ts";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-ranges-", (broker) => (B = broker));
const MARK = "[REDACTED:FAKE_KEY]";
/** The system's Python (the agent user cannot read a pyenv under /root), with requests. */
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/** Text filler with no escape characters: line numbers make every offset distinct. */
function filler(length: number, seed: number): Buffer {
  let text = "";
  for (let i = seed; text.length < length; i++) text += `line ${i} of the ranged body, plain words;\n`;
  return Buffer.from(text.slice(0, length));
}

/** The body with the injected value at `offsets` (each after filler), and the same with it masked. */
function layout(value: string, offsets: readonly number[], length: number): { body: Buffer; masked: Buffer } {
  const body = filler(length, 7);
  const masked = Buffer.from(body);
  for (const at of offsets) {
    body.write(value, at, "latin1");
    masked.write(MARK.padEnd(value.length, "*").slice(0, value.length), at, "latin1");
  }
  return { body, masked };
}

const SMALL = { offsets: [3, 20_000, 20_040], length: 40_000 };
const BIG = { offsets: [299_990, 600_000, 1_000_000 - 40], length: 1_000_000 };

/** Serves `body`, honouring one range `bytes=a-b` / `bytes=a-` as a plain server does. */
function serveRanged(req: IncomingMessage, res: ServerResponse, body: Buffer, extra: Record<string, string> = {}): true {
  const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ""));
  if (!m) {
    res.writeHead(200, { "content-type": "text/plain", "accept-ranges": "bytes", "content-length": body.length, ...extra });
    res.end(body);
    return true;
  }
  const start = Number(m[1]);
  if (start >= body.length) {
    res.writeHead(416, { "content-range": `bytes */${body.length}`, "content-length": 0 });
    res.end();
    return true;
  }
  const end = m[2] ? Math.min(Number(m[2]), body.length - 1) : body.length - 1;
  const part = body.subarray(start, end + 1);
  res.writeHead(206, { "content-type": "text/plain", "content-range": `bytes ${start}-${end}/${body.length}`, "content-length": part.length, ...extra });
  res.end(part);
  return true;
}

/** The Range header of every request that reached the upstream on a /range path. */
const rangesSeen: (string | undefined)[] = [];

beforeAll(() => {
  const base = B.upstream.handler!;
  B.upstream.handler = (req, res, body) => {
    const url = req.url ?? "";
    if (!url.startsWith("/range/")) return base(req, res, body);
    rangesSeen.push(req.headers.range as string | undefined);
    const value = String(req.headers.authorization ?? "").replace(/^Bearer /, "");
    const shape = url.startsWith("/range/big") ? BIG : SMALL;
    const { body: data } = layout(value, shape.offsets, shape.length);
    if (url === "/range/gzip-part") {
      // A part in gzip: a slice of a compressed stream cannot be decoded alone.
      const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ""));
      const zipped = gzipSync(data);
      const start = Number(m?.[1] ?? 0);
      const part = zipped.subarray(start);
      res.writeHead(206, { "content-encoding": "gzip", "content-range": `bytes ${start}-${zipped.length - 1}/${zipped.length}`, "content-length": part.length });
      res.end(part);
      return true;
    }
    if (url === "/range/stingy") {
      // Sends only the bytes the agent asked for (as if it had seen the agent's Range): no margin.
      const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ""));
      if (!m) return serveRanged(req, res, data);
      const start = Number(m[1]) + 13_000;
      const part = data.subarray(start, start + 100);
      res.writeHead(206, { "content-range": `bytes ${start}-${start + 99}/${data.length}`, "content-length": 100 });
      res.end(part);
      return true;
    }
    if (url === "/range/runs-on" || url.endsWith("runs-short")) {
      // Chunked, and not the length its Content-Range gives: more bytes, or fewer.
      const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ""));
      if (!m) return serveRanged(req, res, data);
      const start = Number(m[1]);
      const end = Math.min(Number(m[2] || data.length - 1), data.length - 1);
      res.writeHead(206, { "content-range": `bytes ${start}-${end}/${data.length}` });
      res.end(data.subarray(start, url === "/range/runs-on" ? end + 1000 : end - 1000));
      return true;
    }
    if (url === "/range/multipart") {
      res.writeHead(206, { "content-type": "multipart/byteranges; boundary=X", "content-length": 5 });
      res.end("--X--");
      return true;
    }
    if (url === "/range/changed") {
      // If-Range no longer matches: the whole body, 200.
      res.writeHead(200, { "content-type": "text/plain", "content-length": data.length, etag: '"v2"' });
      res.end(data);
      return true;
    }
    return serveRanged(req, res, data, { etag: '"v1"' });
  };
});

/** One kept-alive tunnel for the many small requests (a new one each time is slow). */
let shared: Awaited<ReturnType<Broker["tunnel"]>> | null = null;

async function ranged(path: string, range: string | null, extra: [string, string][] = []): Promise<{ status: number; body: Buffer; headers: Record<string, string> }> {
  shared ??= await B.tunnel("api.fake.test");
  const headers: [string, string][] = [["Host", "api.fake.test"], ...(range === null ? [] : ([["Range", range]] as [string, string][])), ...extra];
  const r = await shared.request("GET", path, headers, undefined, 20_000).catch(async () => {
    // The proxy closed the connection (after a refusal): once more on a new one.
    shared?.close();
    shared = await B.tunnel("api.fake.test");
    return shared.request("GET", path, headers, undefined, 20_000);
  });
  if (r.headers.connection === "close") {
    shared.close();
    shared = null;
  }
  B.outputs.push(r.body.toString("latin1"));
  return { status: r.status, body: r.body, headers: r.headers };
}

function expectPart(r: { status: number; body: Buffer; headers: Record<string, string> }, masked: Buffer, first: number, last: number): void {
  const end = Math.min(last, masked.length - 1);
  expect(r.status).toBe(206);
  expect(r.headers["content-range"]).toBe(`bytes ${first}-${end}/${masked.length}`);
  expect(Number(r.headers["content-length"])).toBe(end - first + 1);
  expect(r.body.equals(masked.subarray(first, end + 1)), `bytes ${first}-${last}`).toBe(true);
}

describe("one range is answered 206 with exactly its bytes, the value masked in place", () => {
  test("a value cut at every position, from either side, and parts that join into the whole body", async () => {
    const { masked } = layout(B.secret, SMALL.offsets, SMALL.length);
    const at = SMALL.offsets[1]!;
    for (let k = 0; k <= B.secret.length; k++) {
      expectPart(await ranged("/range/small", `bytes=0-${at + k - 1}`), masked, 0, at + k - 1);
      expectPart(await ranged("/range/small", `bytes=${at + k}-`), masked, at + k, masked.length - 1);
      expectPart(await ranged("/range/small", `bytes=${at + k - 1}-${at + k + 1}`), masked, at + k - 1, at + k + 1);
    }
    // The range went upstream widened, not as asked.
    expect(rangesSeen.at(-1)).not.toBe(`bytes=${at + B.secret.length - 1}-${at + B.secret.length + 1}`);
    // Small parts over both values and the filler between them; larger ones over the whole body.
    for (const size of [1, 2, 3, 8]) {
      const parts: Buffer[] = [];
      for (let first = at - 20; first < at + 100; first += size) {
        const r = await ranged("/range/small", `bytes=${first}-${first + size - 1}`);
        expectPart(r, masked, first, first + size - 1);
        parts.push(r.body);
      }
      expect(Buffer.concat(parts).equals(masked.subarray(at - 20, at - 20 + parts.length * size))).toBe(true);
    }
    for (const size of [997, 7777, 13_001]) {
      const parts: Buffer[] = [];
      for (let first = 0; first < masked.length; first += size) {
        const r = await ranged("/range/small", `bytes=${first}-${first + size - 1}`);
        expectPart(r, masked, first, first + size - 1);
        parts.push(r.body);
      }
      expect(Buffer.concat(parts).equals(masked)).toBe(true);
    }
  }, 120_000);

  test("a part past the 256 KiB a body is held whole for streams, and the parts join into the whole body", async () => {
    const { masked } = layout(B.secret, BIG.offsets, BIG.length);
    const parts: Buffer[] = [];
    for (let first = 0; first < masked.length; first += 300_000) {
      const r = await ranged("/range/big", `bytes=${first}-${first + 299_999}`);
      expectPart(r, masked, first, first + 299_999);
      parts.push(r.body);
    }
    expect(Buffer.concat(parts).equals(masked)).toBe(true);
    expectPart(await ranged("/range/big", "bytes=600010-"), masked, 600_010, masked.length - 1);
  }, 60_000);

  test("curl -r", async () => {
    const { masked } = layout(B.secret, SMALL.offsets, SMALL.length);
    for (const [first, last] of [
      [19_990, 20_050],
      [20_010, 20_070],
      [0, 20],
    ] as const) {
      const r = await B.curl(["--suppress-connect-headers", "-r", `${first}-${last}`, "-D", "-", "https://api.fake.test/range/small"]);
      expect(r.code, r.stderr).toBe(0);
      const split = r.stdout.indexOf("\r\n\r\n");
      const head = r.stdout.slice(0, split);
      expect(head).toMatch(/^HTTP\/1.1 206/);
      expect(head.toLowerCase()).toContain(`content-range: bytes ${first}-${last}/${masked.length}`);
      expect(r.stdout.slice(split + 4)).toBe(masked.subarray(first, last + 1).toString("latin1"));
    }
  }, 30_000);

  test("Python requests with a Range header", async () => {
    const { masked } = layout(B.secret, SMALL.offsets, SMALL.length);
    const script = [
      "import base64, json, requests",
      "out = []",
      "for r in ['bytes=20020-20100', 'bytes=39990-', 'bytes=5-9']:",
      "    x = requests.get('https://api.fake.test/range/small', headers={'Range': r}, timeout=20)",
      "    out.append({'status': x.status_code, 'range': x.headers.get('Content-Range'), 'body': base64.b64encode(x.content).decode()})",
      "print(json.dumps(out))",
    ].join("\n");
    const proxy = `http://${B.token}:default@127.0.0.1:${B.server.mitmPort}`;
    const proc = Bun.spawn(asAgent([PYTHON, "-c", script]), {
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HTTPS_PROXY: proxy, REQUESTS_CA_BUNDLE: B.caFile, HOME: "/tmp" },
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    B.outputs.push(stdout, stderr);
    expect(code, stderr).toBe(0);
    const got = JSON.parse(stdout) as { status: number; range: string; body: string }[];
    expect(got.map((g) => [g.status, g.range])).toEqual([
      [206, `bytes 20020-20100/${masked.length}`],
      [206, `bytes 39990-39999/${masked.length}`],
      [206, `bytes 5-9/${masked.length}`],
    ]);
    expect(Buffer.from(got[0]!.body, "base64").equals(masked.subarray(20_020, 20_101))).toBe(true);
    expect(Buffer.from(got[1]!.body, "base64").equals(masked.subarray(39_990))).toBe(true);
    expect(Buffer.from(got[2]!.body, "base64").toString()).toBe(MARK.slice(2, 7));
  }, 30_000);
});

describe("anything else is answered whole, or refused when the part cannot be read whole", () => {
  test("a suffix range, several ranges and a Range that does not parse: not passed on, 200 whole and scrubbed", async () => {
    for (const range of ["bytes=-100", "bytes=0-10,20000-20040", "bytes=5-2", "items=0-10", "bytes=0x10-20"]) {
      const before = rangesSeen.length;
      const r = await ranged("/range/small", range);
      expect(r.status, range).toBe(200);
      expect(rangesSeen.slice(before)).toEqual([undefined]);
      expect(r.body.toString()).toContain(MARK);
      expect(r.body.includes(B.secret)).toBe(false);
    }
  }, 30_000);

  test("past the end: 416 with the object's length", async () => {
    const r = await ranged("/range/small", "bytes=40000-");
    expect(r.status).toBe(416);
    expect(r.headers["content-range"]).toBe("bytes */40000");
    const far = await ranged("/range/small", "bytes=90000-90010");
    expect(far.status).toBe(416);
  }, 30_000);

  test("If-Range goes with the range: a validator that matches gets the part, one that does not gets 200 whole", async () => {
    const { masked } = layout(B.secret, SMALL.offsets, SMALL.length);
    const before = B.upstream.received.length;
    expectPart(await ranged("/range/small", "bytes=20030-20060", [["If-Range", '"v1"']]), masked, 20_030, 20_060);
    expect(B.upstream.received[before]!.headers["if-range"]).toBe('"v1"');
    const changed = await ranged("/range/changed", "bytes=20030-20060", [["If-Range", '"v1"']]);
    expect(changed.status).toBe(200);
    expect(changed.body.length).toBe(SMALL.length - 3 * B.secret.length + 3 * MARK.length);
    expect(changed.body.includes(B.secret)).toBe(false);
  }, 30_000);

  test("a part in gzip, in several parts, or without the margin asked for: 502", async () => {
    for (const path of ["/range/gzip-part", "/range/multipart", "/range/stingy"]) {
      const r = await ranged(path, "bytes=20000-20100");
      expect(r.status, path).toBe(502);
      expect(r.headers["x-agent-vault-error"]).toBe("upstream_error");
      expect(r.body.includes(B.secret)).toBe(false);
    }
  }, 30_000);
});

describe("a part that is not the length its Content-Range gives", () => {
  test("held whole or streamed, it is cut: the agent never gets a complete 206", async () => {
    for (const [path, range] of [
      ["/range/runs-on", "bytes=20000-20100"],
      ["/range/runs-short", "bytes=20000-20100"],
      ["/range/big-runs-short", "bytes=100000-799999"],
    ] as const) {
      const conn = await B.tunnel("api.fake.test");
      const outcome = await conn
        .request(
          "GET",
          path,
          [
            ["Host", "api.fake.test"],
            ["Range", range],
          ],
          undefined,
          20_000,
        )
        .then(
          (r) => `${r.status} ${r.body.length}`,
          () => "cut",
        );
      conn.close();
      expect(outcome, path).toBe("cut");
    }
  }, 30_000);
});

// The AWS CLI's `s3 cp` down fetches objects over 8 MiB in parallel ranged parts (s3transfer).
const hasAwsCli = Bun.spawnSync(["sh", "-c", "command -v aws"]).exitCode === 0;

describe.skipIf(!hasAwsCli)("the AWS CLI as the agent, downloading in ranged parts", () => {
  const scratch = mkdtempSync(join(tmpdir(), "av-ranges-aws-"));
  const cleanups: (() => Promise<void> | void)[] = [];
  const REAL = { accessKeyId: `AKIA${randomBytes(8).toString("hex").toUpperCase()}`, secretAccessKey: `realSecret${randomBytes(15).toString("base64url")}` };
  const HOST = "agent-bucket.s3.eu-west-1.amazonaws.com";
  let H: TempHome;
  let F: FakeAws;
  let ENV: Record<string, string>;
  const outputs: string[] = [];

  beforeAll(async () => {
    F = await startFakeAws(mkdtempSync(join(scratch, "aws-")), REAL);
    cleanups.push(() => F.close());
    H = await tempHome();
    cleanups.push(() => H.cleanup());
    ENV = { AGENT_VAULT_CONNECT_TO: `${HOST}:443:127.0.0.1:${F.upstream.port}`, AGENT_VAULT_UPSTREAM_CA: F.upstream.caFile };
    const { ok } = recordingCli(
      () => H,
      () => ENV,
      outputs,
    );
    await ok(["vault", "credential", "set", "AWS_ACCESS_KEY_ID=-"], REAL.accessKeyId);
    await ok(["vault", "credential", "set", "AWS_SECRET_ACCESS_KEY=-"], REAL.secretAccessKey);
    await ok(s3ServiceArgs());
    await startServer(H, ENV, cleanups);
  }, 60_000);

  afterAll(async () => {
    await runCleanups(cleanups);
    rmSync(scratch, { recursive: true, force: true });
  });

  test("s3 cp down of a 20 MiB object (three 8 MiB ranged parts) gives the same bytes", async () => {
    const data = randomBytes(20 * 1024 * 1024);
    F.objects.set(`${HOST}/big.bin`, data);
    const file = join(scratch, "big.back");
    const before = F.verified.length;
    const script = `aws s3 cp --region eu-west-1 --no-progress s3://agent-bucket/big.bin ${file}`;
    const result = await H.run(["run", "--no-sandbox", "--quiet", "--", "sh", "-c", script], { env: { ...ENV, AWS_CONFIG_FILE: "/dev/null", AWS_SHARED_CREDENTIALS_FILE: "/dev/null" } });
    outputs.push(result.stdout, result.stderr);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file).equals(data)).toBe(true);
    // HEAD, then the three ranged GETs, each signed again with the real keys.
    expect(F.verified.length - before).toBeGreaterThanOrEqual(4);
    for (const text of outputs) expect(text.includes(REAL.secretAccessKey)).toBe(false);
  }, 120_000);
});

describe("what the agent got", () => {
  test("no output the agent saw and no log line holds the value", () => {
    for (const text of [...B.outputs, B.log()]) expect(text.includes(B.secret)).toBe(false);
  });
});
