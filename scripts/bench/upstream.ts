// The upstream of the proxy benchmark: one HTTPS listener that answers for every *.bench.test name
// with a single wildcard certificate from its own test CA (so a new name costs the upstream
// nothing, and a first-request-to-a-new-host measurement sees only the proxy's cost), and a plain
// HTTP control listener that the client asks how many connections the upstream has accepted.
//
// Routes (all on any *.bench.test name):
//   GET  /small                 a 11-byte JSON body; x-bench-auth says which Authorization arrived
//   GET  /close                 the same, then the upstream closes the connection
//   GET  /leak                  a JSON body carrying the credential value (what response scrubbing replaces)
//   GET  /clock                 the upstream's wall clock (ms, sub-ms precision) for clock alignment
//   GET  /sse?n=N&interval=MS   N server-sent events, one every MS ms, each carrying its send time
//   GET  /download?bytes=N      N bytes generated on the fly (one reused buffer, with backpressure)
//   POST /upload[?rate=R]       counts the body without keeping it (reading at R MiB/s if given); answers {"bytes":N}
import { writeFileSync } from "node:fs";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, type Socket } from "node:net";
import tls from "node:tls";
import { createCertificateAuthority, LeafCertificates } from "../../src/proxy/certs.ts";

export const DOMAIN = "bench.test";
/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes. */
export const wallMs = () => performance.timeOrigin + performance.now();

export interface BenchUpstream {
  readonly port: number;
  readonly controlPort: number;
  readonly caFile: string;
  close(): Promise<void>;
}

const CHUNK = Buffer.alloc(64 * 1024, "abcdefghijklmnopqrstuvwxyz0123456789");
export const IDLE_CLOSE_MS = 5_000;

export async function startBenchUpstream(dir: string, secret: string): Promise<BenchUpstream> {
  const ca = createCertificateAuthority();
  const caFile = `${dir}/upstream-ca.pem`;
  writeFileSync(caFile, ca.certPem);
  const context = new LeafCertificates(ca).contextFor(`*.${DOMAIN}`);
  const sockets = new Set<Socket>();
  let accepted = 0;
  /** How long the last /download took to hand all its bytes over (to the proxy or the client). */
  let lastDownloadWriteMs = 0;

  const app = http.createServer((req, res) => route(req, res, secret, (ms) => (lastDownloadWriteMs = ms)));
  // Bun's tls.createServer needs an SNICallback; every name gets the one wildcard context.
  const server = tls.createServer({ SNICallback: (_name, cb) => cb(null, context), secureContext: context }, (socket) => {
    accepted++;
    sockets.add(socket);
    // Like most servers, close a keep-alive connection after a few idle seconds: the proxy's pool
    // must notice, and must not hand a closed connection to the next request.
    socket.setTimeout(IDLE_CLOSE_MS, () => socket.end());
    socket.once("close", () => sockets.delete(socket));
    app.emit("connection", socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));

  const control = http.createServer((req, res) => {
    const body = JSON.stringify({ accepted, open: sockets.size, lastDownloadWriteMs });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => control.listen(0, "127.0.0.1", () => resolve()));

  return {
    port: (server.address() as AddressInfo).port,
    controlPort: (control.address() as AddressInfo).port,
    caFile,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise<void>((r) => server.close(() => r())), new Promise<void>((r) => control.close(() => r()))]);
    },
  };
}

function route(req: IncomingMessage, res: ServerResponse, secret: string, downloadWritten: (ms: number) => void): void {
  const url = new URL(req.url ?? "/", "https://upstream");
  const auth = req.headers.authorization;
  const seen = auth === `Bearer ${secret}` ? "real" : auth === undefined ? "none" : auth.startsWith("Bearer placeholder") ? "placeholder" : "other";
  const small = (extra: Record<string, string> = {}) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": 11, "x-bench-auth": seen, ...extra });
    res.end('{"ok":true}');
  };
  switch (url.pathname) {
    case "/small":
      req.resume();
      return small();
    case "/close":
      req.resume();
      small({ connection: "close" });
      res.once("finish", () => req.socket.end());
      return;
    case "/leak": {
      req.resume();
      const body = JSON.stringify({ token: secret });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-bench-auth": seen });
      res.end(body);
      return;
    }
    case "/clock": {
      req.resume();
      const body = String(wallMs());
      res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
      res.end(body);
      return;
    }
    case "/sse":
      req.resume();
      return sse(res, Number(url.searchParams.get("n") ?? 100), Number(url.searchParams.get("interval") ?? 10));
    case "/download":
      req.resume();
      return download(res, Number(url.searchParams.get("bytes") ?? 0), downloadWritten);
    case "/upload": {
      let bytes = 0;
      // ?rate=MiB/s makes the upstream a slow reader: the proxy must then hold the agent back
      // (backpressure) instead of buffering the body.
      const rate = Number(url.searchParams.get("rate") ?? 0) * 1024 * 1024;
      const t0 = performance.now();
      req.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (rate > 0) {
          const due = t0 + (bytes / rate) * 1000 - performance.now();
          if (due > 1) {
            // The socket, not only the request: under Bun a paused request still lets its
            // connection read on, and the bytes would pile up here instead of in the proxy.
            req.pause();
            req.socket.pause();
            setTimeout(() => {
              req.socket.resume();
              req.resume();
            }, due);
          }
        }
      });
      req.on("end", () => {
        const body = JSON.stringify({ bytes });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-bench-auth": seen });
        res.end(body);
      });
      return;
    }
    default:
      req.resume();
      res.writeHead(404, { "content-length": 0 });
      res.end();
  }
}

function sse(res: ServerResponse, n: number, intervalMs: number): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.flushHeaders();
  let sent = 0;
  const start = performance.now();
  // Each event is scheduled against the stream's start, so timer drift does not accumulate; the
  // event carries the moment it was written, and that is what lag is measured from.
  const next = () => {
    if (res.destroyed) return;
    res.write(`id: ${sent}\ndata: ${wallMs().toFixed(3)}\n\n`);
    sent++;
    if (sent >= n) return void res.end();
    setTimeout(next, Math.max(0, start + sent * intervalMs - performance.now()));
  };
  setTimeout(next, intervalMs);
}

function download(res: ServerResponse, bytes: number, written: (ms: number) => void): void {
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes });
  const t0 = performance.now();
  res.once("finish", () => written(performance.now() - t0));
  let left = bytes;
  const pump = () => {
    while (left > 0) {
      const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= piece.length;
      if (!res.write(piece)) return void res.once("drain", pump);
    }
    res.end();
  };
  res.once("close", () => (left = 0));
  pump();
}
