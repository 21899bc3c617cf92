// Attack (red team, session 7, MEDIUM): requests on the agent API's explicit /proxy/ route were
// not among the connections the sweep re-checks, so one whose head came before a revocation
// outlived it: a chunked upload finished 90 s after `agent revoke` went upstream with the real
// credential, and a server-sent event stream kept flowing. Now those sockets are swept like
// tunnels: within 2 s of the revocation the agent's connections are closed, nothing more of the
// upload reaches the service, the stream stops, and a new request with the token is refused.
import { beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { agentWithPolicy, type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
let agentToken: string;
const scratch = brokerForFile("av-revoke-inflight-", (broker) => (B = broker));
/** When each piece of the upload reached the service, and when each event left it. */
const uploaded: number[] = [];
const events: number[] = [];
let completed = false;

beforeAll(async () => {
  const auth = await agentWithPolicy(B, scratch, "rules:\n  - service: fake\n    methods: [GET, POST]\n");
  agentToken = Buffer.from(auth.replace(/^Basic /, ""), "base64")
    .toString()
    .split(":")[0]!;
  const base = B.upstream.handler!;
  B.upstream.handler = (req, res, body) => {
    if (req.url === "/stream-up") {
      req.on("data", () => uploaded.push(Date.now()));
      req.on("end", () => {
        completed = true;
        res.writeHead(200, { "content-length": "2" });
        res.end("ok");
      });
      return true;
    }
    if (req.url === "/stream-sse") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const timer = setInterval(() => {
        events.push(Date.now());
        res.write("data: tick\n\n");
      }, 100);
      res.on("close", () => clearInterval(timer));
      return true;
    }
    return base(req, res, body);
  };
}, 30_000);

/** A raw connection to the agent API with what it has received so far, and whether it closed. */
async function apiConnection(): Promise<{ socket: net.Socket; got: () => string; closed: () => boolean }> {
  const socket = net.connect(B.server.apiPort, "127.0.0.1");
  await new Promise((resolve) => socket.once("connect", resolve));
  let got = "";
  let closed = false;
  socket.on("data", (d: Buffer) => (got += d.toString("latin1")));
  socket.on("close", () => (closed = true));
  socket.on("error", () => undefined);
  return { socket, got: () => got, closed: () => closed };
}

describe("a /proxy/ request started before a revocation", () => {
  test("is cut within 2 s: no more upload, no more events, and the token is refused", async () => {
    const sse = await apiConnection();
    sse.socket.write(`GET /proxy/api.fake.test/stream-sse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agentToken}\r\n\r\n`);
    const up = await apiConnection();
    up.socket.write(`POST /proxy/api.fake.test/stream-up HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agentToken}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const feed = setInterval(() => {
      if (!up.closed()) up.socket.write("5\r\nhello\r\n");
    }, 100);
    await Bun.sleep(1500);
    expect(sse.got()).toContain("data: tick");

    const revoked = await B.cli(["agent", "revoke", "bot"]);
    expect(revoked.code, revoked.stderr).toBe(0);
    const at = Date.now();
    await Bun.sleep(4000);
    clearInterval(feed);
    if (!up.closed()) up.socket.write("0\r\n\r\n");
    await Bun.sleep(500);

    expect(up.closed()).toBe(true);
    expect(sse.closed()).toBe(true);
    expect(uploaded.filter((t) => t > at + 2000)).toEqual([]);
    expect(events.filter((t) => t > at + 2000)).toEqual([]);
    expect(completed).toBe(false);
    expect(up.got()).not.toContain("200 OK");

    const again = await apiConnection();
    again.socket.write(`GET /proxy/api.fake.test/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${agentToken}\r\n\r\n`);
    await Bun.sleep(500);
    expect(again.got()).toMatch(/^HTTP\/1\.1 401 /);
    for (const c of [sse, up, again]) c.socket.destroy();
  }, 30_000);
});
