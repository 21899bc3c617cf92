// Attack: getting a credential's value back from a service that echoes what it received, in a
// form scrubbing might not know (issue 12, item 3). The agent, as the unprivileged user, asks
// api.fake.test (bearer FAKE_KEY) or api.other.test/basic/ (basic auth, BASIC_PASS) to send the
// injected value back encoded: base64, hex, \u escapes, upper-cased, as basic auth's header, in
// gzip inside gzip, under Transfer-Encoding: gzip, gzipped without saying so, and in two ranges.
// Whatever the agent receives, decoded every way it could decode it, must not hold the value.
import { beforeAll, describe, expect, test } from "bun:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { type IncomingMessage, type ServerResponse } from "node:http";
import { type Socket } from "node:net";
import { recordingCli } from "../support/binary.ts";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-scrub-forms-", (broker) => (B = broker));
const BASIC_PASS = `pw_${crypto.randomUUID().replace(/-/g, "")}`;

/** The value the upstream received: the bearer token, or basic auth's password. */
function injected(req: IncomingMessage): string {
  const auth = String(req.headers.authorization ?? "");
  if (auth.startsWith("Basic ")) return Buffer.from(auth.slice(6), "base64").toString().split(":").slice(1).join(":");
  return auth.replace(/^Bearer /, "");
}

function reply(res: ServerResponse, body: Buffer | string, headers: Record<string, string | number> = {}): true {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  res.writeHead(200, { "content-type": "application/json", "content-length": bytes.length, ...headers });
  res.end(bytes);
  return true;
}

const TEXT_PAD = "x".repeat(40);

// Runs after brokerForFile's (hooks run in the order they are registered), with B started.
beforeAll(async () => {
  const { ok } = recordingCli(
    () => B.home,
    () => ({}),
    B.outputs,
  );
  await ok(["vault", "credential", "set", "BASIC_USER=-"], "robot-user");
  await ok(["vault", "credential", "set", "BASIC_PASS=-"], BASIC_PASS);
  await ok(["vault", "service", "add", "--name", "basic", "--host", "api.other.test/basic/*", "--auth-type", "basic", "--username-key", "BASIC_USER", "--password-key", "BASIC_PASS"]);
  const base = B.upstream.handler!;
  B.upstream.handler = (req, res, body) => {
    const url = req.url ?? "";
    const value = injected(req);
    if (url === "/basic/echo") return reply(res, JSON.stringify({ you_sent: req.headers.authorization }), { "x-echo": String(req.headers.authorization) });
    if (url === "/scrub/base64") return reply(res, JSON.stringify({ b64: Buffer.from(`id:${value}`).toString("base64") }));
    if (url === "/scrub/hex") return reply(res, JSON.stringify({ hex: Buffer.from(value).toString("hex").toUpperCase(), lower: Buffer.from(value).toString("hex") }));
    if (url === "/scrub/unicode") return reply(res, `{"t":"${[...value].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")}"}`);
    if (url === "/scrub/upper") return reply(res, JSON.stringify({ shout: value.toUpperCase() }));
    if (url === "/scrub/mime")
      return reply(
        res,
        Buffer.from(`id:${value}`)
          .toString("base64")
          .replace(/(.{20})/g, "$1\r\n"),
        { "content-type": "text/plain" },
      );
    if (url === "/scrub/utf16") return reply(res, Buffer.from(`token ${value}`, "utf16le"), { "content-type": "text/plain; charset=utf-16le" });
    if (url === "/scrub/entities") return reply(res, `<p>${[...value].map((c) => `&#${c.charCodeAt(0)};`).join("")}</p>`, { "content-type": "text/html" });
    if (url === "/scrub/double-gzip") return reply(res, gzipSync(gzipSync(JSON.stringify({ token: value }))), { "content-encoding": "gzip" });
    if (url === "/scrub/sniffed-gzip") return reply(res, gzipSync(JSON.stringify({ token: value })), { "content-type": "application/octet-stream" });
    if (url === "/scrub/te-gzip") {
      const payload = gzipSync(JSON.stringify({ token: value }));
      // Written raw (node's server will not frame it): the connection closes after it.
      (req.socket as Socket).end(
        Buffer.concat([
          Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${payload.length.toString(16)}\r\n`),
          payload,
          Buffer.from("\r\n0\r\n\r\n"),
        ]),
      );
      return true;
    }
    if (url === "/scrub/range") {
      // Honours Range: a value fetched a few bytes at a time would never be whole in one answer.
      const text = Buffer.from(`${TEXT_PAD}${value}${TEXT_PAD}`);
      const m = /bytes=(\d+)-(\d+)/.exec(String(req.headers.range ?? ""));
      if (!m) return reply(res, text, { "content-type": "text/plain", "accept-ranges": "bytes" });
      const last = Math.min(Number(m[2]), text.length - 1);
      const part = text.subarray(Number(m[1]), last + 1);
      res.writeHead(206, { "content-type": "text/plain", "content-range": `bytes ${m[1]}-${last}/${text.length}`, "content-length": part.length });
      res.end(part);
      return true;
    }
    return base(req, res, body);
  };
}, 60_000);

/** Every way the agent could read a response: as is, base64/hex-decoded tokens, gunzipped, unescaped. */
function readings(body: Buffer): string[] {
  const out = [body.toString("latin1")];
  try {
    out.push(gunzipSync(body).toString("latin1"));
    out.push(gunzipSync(gunzipSync(body)).toString("latin1"));
  } catch {
    // not gzip
  }
  for (const text of [...out]) {
    try {
      const parsed: unknown = JSON.parse(text);
      out.push(JSON.stringify(parsed));
      if (typeof parsed === "string") out.push(parsed);
    } catch {
      // not JSON
    }
    out.push(text.toLowerCase(), text.toUpperCase());
    for (const token of text.match(/[A-Za-z0-9+/_=-]{8,}/g) ?? []) {
      out.push(Buffer.from(token, "base64").toString("latin1"));
      if (/^[0-9a-fA-F]+$/.test(token)) out.push(Buffer.from(token, "hex").toString("latin1"));
    }
  }
  return out;
}

function expectClean(body: Buffer, value: string): void {
  for (const reading of readings(body)) {
    expect(reading.includes(value)).toBe(false);
    expect(reading.toLowerCase().includes(value.toLowerCase())).toBe(false);
  }
}

async function get(host: string, path: string, headers: [string, string][] = []): Promise<{ status: number; body: Buffer; headers: Record<string, string | string[] | undefined> }> {
  const conn = await B.tunnel(host);
  const res = await conn.request("GET", path, [["Host", host], ...headers]);
  B.outputs.push(res.text);
  conn.close();
  return { status: res.status, body: res.body, headers: res.headers };
}

describe("scrubbing removes every form the guard knows", () => {
  test("basic auth's Authorization echoed back, with curl: base64(user:pass) is not shown", async () => {
    const r = await B.curl(["-D", "-", "https://api.other.test/basic/echo"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("REDACTED:BASIC_PASS");
    expectClean(Buffer.from(r.stdout), BASIC_PASS);
  });

  for (const path of ["/scrub/base64", "/scrub/hex", "/scrub/unicode", "/scrub/upper"]) {
    test(`${path.slice(7)} of the injected value`, async () => {
      const r = await get("api.fake.test", path);
      expect(r.status).toBe(200);
      expect(r.body.toString()).toContain("[REDACTED:FAKE_KEY]");
      expectClean(r.body, B.secret);
    });
  }

  test("spellings that cannot be replaced where they stand (wrapped base64, UTF-16, HTML references): the answer is refused", async () => {
    for (const path of ["/scrub/mime", "/scrub/utf16", "/scrub/entities"]) {
      const r = await get("api.fake.test", path);
      expect(r.status, path).toBe(502);
      expect(JSON.parse(r.body.toString()).message).toContain("FAKE_KEY");
      expectClean(r.body, B.secret);
    }
  });

  test("gzip in gzip, declared once", async () => {
    const r = await get("api.fake.test", "/scrub/double-gzip");
    expect(r.status).toBe(200);
    expectClean(r.body, B.secret);
  });

  test("Transfer-Encoding: gzip", async () => {
    const r = await get("api.fake.test", "/scrub/te-gzip");
    expect(r.status).toBe(200);
    expect(r.body.toString()).toContain("[REDACTED:FAKE_KEY]");
    expectClean(r.body, B.secret);
  });

  test("gzip the response does not declare: the agent may gunzip it itself", async () => {
    const r = await get("api.fake.test", "/scrub/sniffed-gzip");
    expect(r.status).toBe(200);
    expect(gunzipSync(r.body).toString()).toContain("[REDACTED:FAKE_KEY]");
    expectClean(r.body, B.secret);
  });

  test("two Range requests cannot assemble the value: each part is masked with the bytes around it (test/attacks/scrub-ranges.test.ts)", async () => {
    const cut = TEXT_PAD.length + 10;
    const first = await get("api.fake.test", "/scrub/range", [["Range", `bytes=0-${cut - 1}`]]);
    const second = await get("api.fake.test", "/scrub/range", [["Range", `bytes=${cut}-${cut + 200}`]]);
    expect([first.status, second.status]).toEqual([206, 206]);
    expectClean(Buffer.concat([first.body, second.body]), B.secret);
    expect(first.body.toString()).toEndWith("[REDACTED:");
  });
});

describe("what the agent got", () => {
  test("no output the agent saw and no log line holds a value", () => {
    for (const text of [...B.outputs, B.log()]) {
      expect(text.includes(B.secret)).toBe(false);
      expect(text.includes(BASIC_PASS)).toBe(false);
    }
  });
});
