// How the way a relay writes what it read changes its bulk throughput (the experiment behind
// src/net/http1-write.ts's writeParts): a bare relay in Bun (a TLS socket's reads written to another
// TLS socket with backpressure; no HTTP, no scanning), three processes (upstream, relay, client) as
// in bench-proxy's workload 4, whose table has its own bare relay (scripts/bench/relay.ts) as the
// floor beside the proxy. Prints the relay's CPU per GiB and the
// client's MiB/s for each way of writing what was read: as read, copied, chunk-framed with one
// join, chunk-framed as three writes.
// Usage: bun scripts/bench-relay.ts [MiB] [rounds]   (needs openssl for a throwaway certificate)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";

// The same file plays each process: `bench-relay.ts upstream|relay|client ARGS`; anything else runs them.
const role = ["upstream", "relay", "client"].includes(process.argv[2] ?? "") ? process.argv[2]! : "main";
const args = process.argv.slice(3);
const MiB = 1024 * 1024;

function options(dir: string) {
  return { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) };
}

if (role === "upstream") {
  const [dir, total] = [args[0]!, Number(args[1])];
  const chunk = Buffer.alloc(64 * 1024, "abcdefghijklmnopqrstuvwxyz0123456789");
  const server = tls.createServer(options(dir), (socket) => {
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once("drain", pump);
      }
      socket.end();
    };
    pump();
  });
  server.listen(0, "127.0.0.1", () => console.log((server.address() as { port: number }).port));
} else if (role === "relay") {
  const [dir, upstreamPort, mode, total] = [args[0]!, Number(args[1]), args[2]!, Number(args[3])];
  const CRLF = Buffer.from("\r\n");
  const server = tls.createServer(options(dir), (down) => {
    const start = process.cpuUsage();
    const up = tls.connect({ port: upstreamPort, host: "127.0.0.1", rejectUnauthorized: false });
    up.on("data", (bytes: Buffer) => {
      const size = Buffer.from(`${bytes.length.toString(16)}\r\n`);
      let ok: boolean;
      if (mode === "copied") ok = down.write(Buffer.from(bytes));
      else if (mode === "framed-joined") ok = down.write(Buffer.concat([size, bytes, CRLF]));
      else if (mode === "framed-three-writes") {
        down.write(size);
        down.write(bytes);
        ok = down.write(CRLF);
      } else ok = down.write(bytes);
      if (!ok) {
        up.pause();
        down.once("drain", () => up.resume());
      }
    });
    up.on("end", () =>
      down.end(() => {
        const used = process.cpuUsage(start);
        console.error(`relay-cpu ${(((used.user + used.system) / 1e6) * (1024 * MiB)) / total}`);
        process.exit(0);
      }),
    );
  });
  server.listen(0, "127.0.0.1", () => console.log((server.address() as { port: number }).port));
} else if (role === "client") {
  const port = Number(args[0]);
  const started = performance.now();
  let got = 0;
  const socket = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false });
  socket.on("data", (bytes: Buffer) => (got += bytes.length));
  socket.on("end", () => {
    console.log(`${got / MiB / ((performance.now() - started) / 1000)}`);
    process.exit(0);
  });
} else {
  const total = Number(process.argv[2] ?? 512) * MiB;
  const rounds = Number(process.argv[3] ?? 3);
  const dir = mkdtempSync(join(tmpdir(), "av-bench-relay-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost"], {
    stdio: "ignore",
  });
  const self = import.meta.path;
  const firstLine = async (proc: ReturnType<typeof Bun.spawn>) => {
    const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    return new TextDecoder().decode(value).trim();
  };
  const results = new Map<string, { cpu: number[]; rate: number[] }>();
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of ["as-read", "copied", "framed-joined", "framed-three-writes"]) {
        const upstream = Bun.spawn([process.execPath, self, "upstream", dir, String(total)], { stdout: "pipe" });
        const upstreamPort = await firstLine(upstream);
        const relay = Bun.spawn([process.execPath, self, "relay", dir, upstreamPort, mode, String(total)], { stdout: "pipe", stderr: "pipe" });
        const relayPort = await firstLine(relay);
        const client = Bun.spawn([process.execPath, self, "client", relayPort], { stdout: "pipe" });
        const rate = Number(await new Response(client.stdout as ReadableStream).text());
        const cpu = Number(/relay-cpu ([\d.]+)/.exec(await new Response(relay.stderr as ReadableStream).text())?.[1]);
        upstream.kill();
        const r = results.get(mode) ?? { cpu: [], rate: [] };
        r.cpu.push(cpu);
        r.rate.push(rate);
        results.set(mode, r);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const range = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
  console.log(`relay of ${total / MiB} MiB, ${rounds} rounds: relay CPU s per GiB, client MiB/s`);
  for (const [mode, r] of results) console.log(`${mode.padEnd(20)} ${range(r.cpu, 2)} s/GiB   ${range(r.rate, 0)} MiB/s`);
}
