// Attack (found by red-teaming): the agent throws malformed input at the agent API port, which the
// same parser as the proxy reads: a `/proxy/` target with a stray `%` (the decode threw and the API
// answered 500 "internal error", naming nothing), a TLS hello, an HTTP/2 preface, NULs, heads cut
// off and half-closed sockets, and hundreds of idle connections. Each must get a clear 4xx naming
// what is wrong (or the connection closed), reach no upstream, and leave the server answering.
// Broker and attacker: the unprivileged user.
import { describe, expect, test } from "bun:test";
import net from "node:net";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-api-garbage-", (broker) => (B = broker));

/** Writes `bytes` to the API port (half-closing after if asked) and returns what came back within `ms`. */
function send(bytes: Buffer | string, options: { halfClose?: boolean; ms?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(B.server.apiPort, "127.0.0.1");
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString("latin1");
      B.outputs.push(text);
      resolve(text);
    };
    const timer = setTimeout(done, options.ms ?? 2_000);
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("close", done);
    socket.on("error", done);
    socket.on("connect", () => {
      socket.write(bytes);
      if (options.halfClose) socket.end();
    });
  });
}

async function healthy(): Promise<void> {
  expect(await send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).toContain('{"status":"ok"}');
  const discover = await send(`GET /discover HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${B.token}\r\nConnection: close\r\n\r\n`);
  expect(discover).toMatch(/^HTTP\/1\.1 200 /);
}

describe("malformed input on the agent API port", () => {
  test("a /proxy/ target with a stray %: 400 invalid_request naming the route, nothing upstream", async () => {
    const mark = B.upstream.received.length;
    for (const target of ["/proxy/%zz/x", "/proxy/api.fake.test%/x", "/proxy/%E0%A4%A/x"]) {
      const r = await send(`GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${B.token}\r\nConnection: close\r\n\r\n`);
      expect(r, target).toMatch(/^HTTP\/1\.1 400 /);
      expect(r, target).toContain('"error":"invalid_request"');
      expect(r, target).toContain("/proxy/{host}/{path}");
    }
    expect(B.upstream.received.length).toBe(mark);
    await healthy();
  });

  test("garbage, cut heads, half-closed sockets and idle connections: never a crash, still answering", async () => {
    const garbage = [
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      Buffer.alloc(4096, 0),
      "GET /health HTTP/1.1\r\nHost: x\r\nX-Cut: ",
      `POST /v1/proposals HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${B.token}\r\nContent-Length: 1000\r\n\r\n{"services":`,
      `POST /v1/proposals HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${B.token}\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n`,
    ];
    for (const g of garbage) {
      const r = await send(g, { halfClose: true, ms: 1_000 });
      expect(r === "" || /^HTTP\/1\.1 4\d\d /.test(r), JSON.stringify(r.slice(0, 200))).toBe(true);
    }
    const idle = await Promise.all(
      Array.from(
        { length: 300 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect(B.server.apiPort, "127.0.0.1", () => resolve(s));
            s.on("error", () => resolve(s));
          }),
      ),
    );
    await healthy();
    for (const s of idle) s.destroy();
    expect(B.server.live.proc.exitCode).toBeNull();
  }, 30_000);
});
