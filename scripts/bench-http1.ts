// The HTTP/1.1 parser alone: 100k small keep-alive requests (100 pipelined per read, as a busy
// keep-alive connection delivers them) and 100k responses with a small body, in ns per message.
// Usage: bun scripts/bench-http1.ts [rounds]
import { RequestParser, ResponseParser } from "../src/net/http1.ts";

const REQUEST =
  "GET /v1/models?limit=10 HTTP/1.1\r\nHost: api.openai.com\r\nUser-Agent: codex/0.1\r\nAccept: application/json\r\nAuthorization: Bearer sk-placeholder-0123456789\r\nConnection: keep-alive\r\n\r\n";
const RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\nDate: Tue, 01 Dec 2026 17:00:00 GMT\r\n\r\n{"object":"list"}';

function measure(name: string, input: Buffer, perFeed: number, parse: (count: () => void) => (b: Buffer) => void): number {
  let count = 0;
  const feed = parse(() => count++);
  const rounds = 1000;
  for (let i = 0; i < rounds; i++) feed(input); // warm up
  let best = Number.POSITIVE_INFINITY;
  for (let trial = 0; trial < Number(process.argv[2] ?? 5); trial++) {
    count = 0;
    // CPU time, not wall time: on a shared machine the wall clock mostly measures the neighbours.
    const start = process.cpuUsage();
    for (let i = 0; i < rounds; i++) feed(input);
    const used = process.cpuUsage(start);
    best = Math.min(best, ((used.user + used.system) * 1000) / count);
  }
  console.log(`${name}: ${best.toFixed(0)} ns/message (CPU time, best of trials, ${rounds * perFeed} messages each)`);
  return best;
}

measure("requests ", Buffer.from(REQUEST.repeat(100), "latin1"), 100, (count) => {
  const p: RequestParser = new RequestParser({ head: () => undefined, body: () => undefined, end: () => count() });
  return (b) => {
    p.feed(b);
    while (p.state === "done") p.next();
  };
});
measure("responses", Buffer.from(RESPONSE.repeat(100), "latin1"), 100, (count) => {
  const p: ResponseParser = new ResponseParser({ head: () => undefined, body: () => undefined, end: () => count() });
  return (b) => {
    p.feed(b);
    while (p.state === "done") p.next();
  };
});

// Body throughput: a chunked response body in 16 KiB chunks, fed in 64 KiB reads that cut chunks
// anywhere, as a socket delivers them. Bytes are handed on as views, so this measures framing only.
{
  const piece = Buffer.alloc(16 * 1024, 0x61);
  const framed = Buffer.concat(Array.from({ length: 64 }, () => Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")])));
  const reads: Buffer[] = [];
  for (let at = 0; at < framed.length; at += 65_000) reads.push(framed.subarray(at, at + 65_000));
  let bytes = 0;
  const p = new ResponseParser({ head: () => undefined, body: (b) => (bytes += b.length), end: () => undefined });
  p.feed(Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const start = process.cpuUsage();
  for (let round = 0; round < 200; round++) for (const r of reads) p.feed(r);
  const used = process.cpuUsage(start);
  console.log(`chunked body: ${(bytes / 1e6 / ((used.user + used.system) / 1e6)).toFixed(0)} MB/s of CPU (${(bytes / 2 ** 20).toFixed(0)} MiB in 16 KiB chunks, 65000-byte reads)`);
}
