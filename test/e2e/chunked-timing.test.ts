// When a chunked (re-framed, scrubbed) response's chunk reaches the agent, through the compiled
// binary: the upstream streams big chunks (64 KiB, 1 MiB, each ending in a newline so the scrubber
// holds nothing back) with pauses between them, and every chunk, its closing CRLF included, must
// reach the agent within a few ms of the upstream sending it. Python requests (urllib3) reads a
// chunk's CRLF before handing the chunk over, so a CRLF the proxy owes (ChunkedWriter in
// src/net/http1-write.ts) and sends late delays the chunk by as much, up to the next chunk's
// arrival. A raw client checks the framing byte by byte and that keep-alive still works after.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { type ServerResponse } from "node:http";
import { join } from "node:path";
import type tls from "node:tls";
import { homePaths } from "../../src/shared/paths.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { recordingCli, TEST_PASSWORD, type TempHome } from "../support/binary.ts";
import { basicProxyAuth, openTunnel } from "../support/proxy-client.ts";
import { addBearerService, fileScene, sceneHome, sceneUpstream } from "../support/scene.ts";
import { type Server, startServer } from "../support/server.ts";
import { type Upstream } from "../support/upstream.ts";

const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;
const scene = fileScene("av-chunked-timing-", { absent: [SECRET] });
const { cleanups, outputs } = scene;
const HOST = "stream.timing.test";
/** The pause before each chunk: longer than LATE_MS, so a CRLF held until the next chunk shows. */
const PAUSE_MS = 300;
/**
 * The median chunk later than this after the upstream sent it was held back (a local hop takes a
 * few ms). The median, not the worst: on a loaded machine one 1 MiB chunk in five can take 100-300
 * ms, while a CRLF held back delays every chunk but the last.
 */
const LATE_MS = 100;

const now = () => performance.timeOrigin + performance.now();

let H: TempHome;
let U: Upstream;
let S: Server;
let token: string;
/** When the upstream wrote each chunk (wall-clock ms), per request id. */
const sent = new Map<string, number[]>();
let ENV: Record<string, string>;
const cli = recordingCli(
  () => H,
  () => ENV,
  outputs,
);

/** `/stream/timed?id=&size=&n=`: n chunks of `size` random bytes, each ending in a newline, PAUSE_MS apart, no Content-Length. */
function serveTimed(url: string, res: ServerResponse): void {
  const q = new URL(url, "https://x").searchParams;
  const size = Number(q.get("size"));
  const n = Number(q.get("n"));
  const times: number[] = [];
  sent.set(q.get("id")!, times);
  res.writeHead(200, { "content-type": "application/octet-stream" });
  res.flushHeaders();
  void (async () => {
    for (let i = 0; i < n; i++) {
      await Bun.sleep(PAUSE_MS);
      const piece = randomBytes(size);
      piece[size - 1] = 0x0a;
      times.push(now());
      res.write(piece);
    }
    res.end();
  })();
}

beforeAll(async () => {
  U = await sceneUpstream(scene, (req, res) => {
    if (!req.url?.startsWith("/stream/timed")) return false;
    serveTimed(req.url, res);
    return true;
  });
  H = await sceneHome(scene);
  ENV = { AGENT_VAULT_CONNECT_TO: `${HOST}:443:127.0.0.1:${U.port}`, AGENT_VAULT_UPSTREAM_CA: U.caFile };
  await addBearerService(cli, SECRET, HOST);
  S = await startServer(H, ENV, cleanups);
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  const store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
  token = (await createSession(store, "default", {})).token;
}, 60_000);

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[values.length >> 1]!;
}

/** How long after the upstream sent it each chunk reached the client. */
function delays(id: string, arrivals: readonly number[]): number[] {
  const times = sent.get(id)!;
  expect(arrivals.length).toBe(times.length);
  return arrivals.map((t, i) => Math.round(t - times[i]!));
}

const REQUESTS_READER = `
import json, sys, time, requests
url, size, proxy, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = requests.get(url, stream=True, proxies={"https": proxy}, verify=ca, headers={"Authorization": "Bearer placeholder"}, timeout=20)
got, arrivals = 0, []
for piece in r.iter_content(chunk_size=None):
    got += len(piece)
    while got >= (len(arrivals) + 1) * size:
        arrivals.append(time.time() * 1000)
print(json.dumps({"status": r.status_code, "te": r.headers.get("transfer-encoding"), "bytes": got, "arrivals": arrivals}))
`;

describe("big chunks of a scrubbed stream reach the agent as the upstream sends them", () => {
  for (const size of [64 * 1024, 1024 * 1024]) {
    test(`Python requests, iter_content: ${size / 1024} KiB chunks ${PAUSE_MS} ms apart arrive within ${LATE_MS} ms (median)`, async () => {
      const id = `py-${size}`;
      const n = 5;
      const proxy = `http://${token}:default@127.0.0.1:${S.mitmPort}`;
      const proc = Bun.spawn(["python3", "-c", REQUESTS_READER, `https://${HOST}/stream/timed?id=${id}&size=${size}&n=${n}`, String(size), proxy, join(H.dir, "ca.pem")], {
        stdout: "pipe",
        stderr: "pipe",
      });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      outputs.push(stdout, stderr);
      expect(code, stderr).toBe(0);
      const result = JSON.parse(stdout) as { status: number; te: string | null; bytes: number; arrivals: number[] };
      expect(result.status).toBe(200);
      // Re-framed by the scrubber: the case where the proxy owes a CRLF after each big chunk.
      expect(result.te).toBe("chunked");
      expect(result.bytes).toBe(size * n);
      const late = delays(id, result.arrivals);
      expect(median(late), `delays (ms) after the upstream sent each chunk: ${late.join(", ")}`).toBeLessThan(LATE_MS);
    }, 20_000);
  }

  test(`raw TLS client: 64 KiB chunks and their CRLF within ${LATE_MS} ms (median), strict framing to 0\\r\\n\\r\\n, then a second request on the connection`, async () => {
    const t = await openTunnel({ proxyPort: S.mitmPort, host: HOST, proxyAuthorization: basicProxyAuth(token), ca: [readFileSync(join(H.dir, "ca.pem"), "utf8")] });
    expect(t.connect.status, t.connect.text).toBe(200);
    const conn = t.conn!;
    cleanups.push(() => conn.close());
    const socket = conn.socket as tls.TLSSocket;
    socket.removeAllListeners("data");
    const size = 64 * 1024;
    const n = 5;
    const framed = readChunked(socket);
    socket.write(`GET /stream/timed?id=raw&size=${size}&n=${n} HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer placeholder\r\n\r\n`);
    const first = await within(10_000, framed);
    expect(first.head).toMatch(/^HTTP\/1\.1 200 /);
    expect(first.head.toLowerCase()).toContain("transfer-encoding: chunked");
    expect(first.errors).toEqual([]);
    expect(first.bytes).toBe(size * n);
    // A chunk is whole at its CRLF: a client that waits for it (urllib3) hands it over then.
    const whole: number[] = [];
    for (let i = 0; i < n; i++) whole.push(first.ends.find((e) => e.body >= (i + 1) * size)!.at);
    const late = delays("raw", whole);
    expect(median(late), `delays (ms) of each chunk's CRLF after the upstream sent it: ${late.join(", ")}`).toBeLessThan(LATE_MS);
    // Keep-alive: the connection serves the next request.
    const second = readChunked(socket);
    socket.write(`GET /stream/timed?id=raw2&size=10&n=1 HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: Bearer placeholder\r\n\r\n`);
    const again = await within(5_000, second);
    expect(again.head).toMatch(/^HTTP\/1\.1 200 /);
    expect(again.errors).toEqual([]);
    expect(again.bytes).toBe(10);
  }, 20_000);
});

/** `read`'s result, or after `ms` a failure that says how far it got. */
async function within(ms: number, read: Promise<Chunked> & { progress: Chunked & { state: string } }): Promise<Chunked> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no whole response after ${ms} ms: ${JSON.stringify(read.progress)}`)), ms);
  });
  try {
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Chunked {
  head: string;
  /** Body bytes so far at each chunk's closing CRLF, and when that CRLF arrived (wall-clock ms). */
  ends: { body: number; at: number }[];
  bytes: number;
  errors: string[];
}

/** Reads one chunked response off `socket`, strictly: hex size lines, every chunk ended by CRLF, the body by 0\r\n\r\n. */
function readChunked(socket: tls.TLSSocket): Promise<Chunked> & { progress: Chunked & { state: string } } {
  const out: Chunked & { state: string } = { head: "", ends: [], bytes: 0, errors: [], state: "head" };
  const read = new Promise<Chunked>((resolve) => {
    let buf = Buffer.alloc(0);
    let state: "head" | "size" | "data" | "crlf" | "trailer" = "head";
    let left = 0;
    const done = () => {
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve(out);
    };
    const fail = (error: string) => {
      out.errors.push(error);
      done();
    };
    const onClose = () => fail(`closed in state ${state} after ${out.bytes} body bytes`);
    const onData = (bytes: Buffer) => {
      buf = Buffer.concat([buf, bytes]);
      parse();
      out.state = `${state}, ${buf.length} bytes unread`;
    };
    const parse = () => {
      for (;;) {
        if (state === "data") {
          const take = Math.min(left, buf.length);
          out.bytes += take;
          left -= take;
          buf = buf.subarray(take);
          if (left > 0 || take === 0) return;
          state = "crlf";
          continue;
        }
        if (state === "crlf") {
          if (buf.length < 2) return;
          if (buf[0] !== 0x0d || buf[1] !== 0x0a) return fail(`the chunk ending at body byte ${out.bytes} is followed by ${JSON.stringify(buf.subarray(0, 8).toString("latin1"))}, not CRLF`);
          out.ends.push({ body: out.bytes, at: now() });
          buf = buf.subarray(2);
          state = "size";
          continue;
        }
        const end = buf.indexOf(state === "head" ? "\r\n\r\n" : "\r\n");
        if (end < 0) return;
        const line = buf.subarray(0, end).toString("latin1");
        buf = buf.subarray(end + (state === "head" ? 4 : 2));
        if (state === "head") {
          out.head = line;
          state = "size";
        } else if (state === "trailer") {
          if (line !== "") return fail(`a trailer line ${JSON.stringify(line)}`);
          if (buf.length > 0) return fail(`${buf.length} bytes after the last chunk`);
          return done();
        } else {
          if (!/^[0-9a-f]+$/.test(line)) return fail(`size line ${JSON.stringify(line.slice(0, 40))}`);
          left = Number.parseInt(line, 16);
          state = left === 0 ? "trailer" : "data";
        }
      }
    };
    socket.on("data", onData);
    socket.on("close", onClose);
  });
  return Object.assign(read, { progress: out });
}
