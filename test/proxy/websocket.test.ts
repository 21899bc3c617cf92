// The WebSocket codec (src/proxy/websocket.ts) without sockets: messages fragmented with control
// frames in between, every length encoding, bytes arriving one at a time, and the frames a peer
// must never send (each named with the close code it earns); and the policy over whole messages.
import { describe, expect, test } from "bun:test";
import { CLOSE_CODE, closePayload, encodeFrame, FrameParser, OPCODE, parseClose, unmask, type WsMessage } from "../../src/proxy/websocket.ts";
import { patternsOf } from "../../src/proxy/secrets.ts";
import { websocketPolicy } from "../../src/proxy/ws-policy.ts";
import { prng } from "../support/random.ts";

/** A frame as a client would write it (masked), with control over fin, rsv and the length field. */
function frame(opcode: number, payload: Buffer | string, options: { fin?: boolean; masked?: boolean; rsv?: number; lengthBytes?: 0 | 2 | 8 } = {}): Buffer {
  const data = Buffer.from(payload);
  const masked = options.masked ?? true;
  const lengthBytes = options.lengthBytes ?? (data.length < 126 ? 0 : data.length < 65536 ? 2 : 8);
  const head = Buffer.alloc(2 + lengthBytes);
  head[0] = ((options.fin ?? true) ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode;
  if (lengthBytes === 0) head[1] = data.length;
  else if (lengthBytes === 2) {
    head[1] = 126;
    head.writeUInt16BE(data.length, 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(data.length), 2);
  }
  if (!masked) return Buffer.concat([head, data]);
  head[1]! |= 0x80;
  const key = Buffer.from([0xa1, 0x07, 0x3c, 0xfe]);
  const body = Buffer.from(data);
  unmask(body, key);
  return Buffer.concat([head, key, body]);
}

function parseAll(bytes: Buffer, fromClient = true, maxMessageBytes?: number): { messages: WsMessage[]; failure: { code: number; reason: string } | null } {
  const parser = new FrameParser({ fromClient, ...(maxMessageBytes ? { maxMessageBytes } : {}) });
  return parser.push(bytes);
}

function texts(messages: WsMessage[]): string[] {
  return messages.map((m) => `${m.opcode}:${m.payload.toString("utf8")}`);
}

describe("FrameParser: messages", () => {
  test("text and binary messages, masked from a client and unmasked from a server", () => {
    const client = parseAll(Buffer.concat([frame(OPCODE.text, "hello"), frame(OPCODE.binary, Buffer.from([0, 255, 7]))]));
    expect(client.failure).toBeNull();
    expect(client.messages.map((m) => [m.opcode, [...m.payload]])).toEqual([
      [1, [...Buffer.from("hello")]],
      [2, [0, 255, 7]],
    ]);
    const server = parseAll(frame(OPCODE.text, "hi", { masked: false }), false);
    expect(texts(server.messages)).toEqual(["1:hi"]);
  });

  test("a message split across continuation frames, with a ping and a pong in between, comes out whole after the controls", () => {
    const bytes = Buffer.concat([
      frame(OPCODE.text, "sk_live_", { fin: false }),
      frame(OPCODE.ping, "are you there"),
      frame(OPCODE.continuation, "abc", { fin: false }),
      frame(OPCODE.pong, ""),
      frame(OPCODE.continuation, "def"),
    ]);
    const { messages, failure } = parseAll(bytes);
    expect(failure).toBeNull();
    expect(texts(messages)).toEqual(["9:are you there", "10:", "1:sk_live_abcdef"]);
  });

  test("the three length encodings: 7-bit, 16-bit, 64-bit, and a 64-bit field holding a small length", () => {
    for (const size of [0, 125, 126, 65535, 65536, 200_000]) {
      const payload = Buffer.alloc(size, 0x61);
      const { messages, failure } = parseAll(frame(OPCODE.binary, payload));
      expect(failure).toBeNull();
      expect(messages[0]!.payload.equals(payload)).toBe(true);
    }
    expect(texts(parseAll(frame(OPCODE.text, "tiny", { lengthBytes: 8 })).messages)).toEqual(["1:tiny"]);
  });

  test("bytes arriving one at a time, and at random cuts, give the same messages", () => {
    const r = prng(7);
    const parts = [frame(OPCODE.text, "é".repeat(100), { fin: false }), frame(OPCODE.ping, "p"), frame(OPCODE.continuation, "x".repeat(70_000)), frame(OPCODE.close, closePayload(1000, "bye"))];
    const whole = Buffer.concat(parts);
    const expected = texts(parseAll(whole).messages);
    expect(expected.length).toBe(3);
    const oneByOne = new FrameParser({ fromClient: true });
    const got: WsMessage[] = [];
    for (const b of whole) got.push(...oneByOne.push(Buffer.from([b])).messages);
    expect(texts(got)).toEqual(expected);
    for (let round = 0; round < 20; round++) {
      const parser = new FrameParser({ fromClient: true });
      const out: WsMessage[] = [];
      for (let at = 0; at < whole.length; ) {
        const n = 1 + Math.floor(r() * 5000);
        out.push(...parser.push(whole.subarray(at, at + n)).messages);
        at += n;
      }
      expect(texts(out)).toEqual(expected);
    }
  });

  test("a close frame's code and reason", () => {
    const { messages } = parseAll(frame(OPCODE.close, closePayload(1000, "done")));
    expect(parseClose(messages[0]!.payload)).toEqual({ code: 1000, reason: "done" });
    expect(closePayload(1008, "é".repeat(200)).length).toBeLessThanOrEqual(125);
  });
});

describe("FrameParser: frames a peer must never send", () => {
  const cases: [string, Buffer, number, boolean?][] = [
    ["a reserved bit (no extension negotiated)", frame(OPCODE.text, "x", { rsv: 4 }), CLOSE_CODE.protocolError],
    ["RSV2 and RSV3", frame(OPCODE.text, "x", { rsv: 3 }), CLOSE_CODE.protocolError],
    ["a reserved data opcode", frame(0x3, "x"), CLOSE_CODE.protocolError],
    ["a reserved control opcode", frame(0xb, "x"), CLOSE_CODE.protocolError],
    ["an unmasked frame from a client", frame(OPCODE.text, "x", { masked: false }), CLOSE_CODE.protocolError],
    ["a masked frame from a server", frame(OPCODE.text, "x"), CLOSE_CODE.protocolError, false],
    ["a fragmented ping", frame(OPCODE.ping, "x", { fin: false }), CLOSE_CODE.protocolError],
    ["a control frame over 125 bytes", frame(OPCODE.ping, "x".repeat(126)), CLOSE_CODE.protocolError],
    ["a continuation with no message", frame(OPCODE.continuation, "x"), CLOSE_CODE.protocolError],
    ["a new message inside a fragmented one", Buffer.concat([frame(OPCODE.text, "a", { fin: false }), frame(OPCODE.binary, "b")]), CLOSE_CODE.protocolError],
    ["a text message that is not UTF-8", frame(OPCODE.text, Buffer.from([0xc3, 0x28])), CLOSE_CODE.invalidData],
    [
      "UTF-8 cut between two fragments and never finished",
      Buffer.concat([frame(OPCODE.text, Buffer.from([0x61, 0xe2, 0x82]), { fin: false }), frame(OPCODE.continuation, "b")]),
      CLOSE_CODE.invalidData,
    ],
    ["a close frame with one byte", frame(OPCODE.close, Buffer.from([3])), CLOSE_CODE.protocolError],
    ["a close frame with code 1005", frame(OPCODE.close, closePayload(1005)), CLOSE_CODE.protocolError],
  ];
  for (const [name, bytes, code, fromClient] of cases) {
    test(`${name} → ${code}`, () => {
      const { failure, messages } = parseAll(bytes, fromClient ?? true);
      expect(failure?.code).toBe(code);
      expect(messages).toEqual([]);
    });
  }

  test("a 64-bit length with the top bit set → 1002, and one past the cap → 1009, before any payload is buffered", () => {
    const head = (length: bigint) => {
      const b = Buffer.alloc(14);
      b[0] = 0x82;
      b[1] = 0x80 | 127;
      b.writeBigUInt64BE(length, 2);
      return b;
    };
    expect(parseAll(head(1n << 63n)).failure?.code).toBe(CLOSE_CODE.protocolError);
    // 2^53 + 1 would round to a small-looking number if converted first.
    expect(parseAll(head((1n << 53n) + 1n)).failure?.code).toBe(CLOSE_CODE.tooBig);
    expect(parseAll(head(17n * 1024n * 1024n)).failure?.code).toBe(CLOSE_CODE.tooBig);
  });

  test("the cap is on the whole message: fragments under it that add up past it → 1009", () => {
    const bytes = Buffer.concat([frame(OPCODE.binary, Buffer.alloc(600), { fin: false }), frame(OPCODE.continuation, Buffer.alloc(600))]);
    expect(parseAll(bytes, true, 1000).failure?.code).toBe(CLOSE_CODE.tooBig);
    expect(parseAll(bytes, true, 1200).failure).toBeNull();
  });

  test("a failure is final: later bytes are not parsed", () => {
    const parser = new FrameParser({ fromClient: true });
    expect(parser.push(frame(0x3, "x")).failure?.code).toBe(CLOSE_CODE.protocolError);
    expect(parser.push(frame(OPCODE.text, "after")).messages).toEqual([]);
  });

  test("messages complete before a bad frame in the same chunk are returned; the bad one is not", () => {
    const { messages, failure } = parseAll(Buffer.concat([frame(OPCODE.text, "ok"), frame(OPCODE.text, "x", { rsv: 1 })]));
    expect(texts(messages)).toEqual(["1:ok"]);
    expect(failure?.code).toBe(CLOSE_CODE.protocolError);
  });
});

describe("encodeFrame", () => {
  test("round trips through the parser in both directions, masked with a fresh key each time", () => {
    for (const size of [0, 5, 125, 126, 65535, 65536]) {
      const payload = Buffer.alloc(size, 0x7a);
      const toServer = encodeFrame(OPCODE.binary, payload, { masked: true });
      const again = encodeFrame(OPCODE.binary, payload, { masked: true });
      if (size > 8) expect(toServer.equals(again)).toBe(false);
      expect(parseAll(toServer, true).messages[0]!.payload.equals(payload)).toBe(true);
      expect(parseAll(encodeFrame(OPCODE.binary, payload, { masked: false }), false).messages[0]!.payload.equals(payload)).toBe(true);
    }
  });

  test("a masked frame does not carry the payload in clear", () => {
    const frameBytes = encodeFrame(OPCODE.text, Buffer.from("sk_live_visible_value"), { masked: true });
    expect(frameBytes.toString("latin1")).not.toContain("sk_live_visible_value");
  });
});

describe("websocketPolicy (what may cross an open WebSocket)", () => {
  const value = "sk_live_Zq9x_policy_value";
  const all = patternsOf("KEY", value);
  const policy = websocketPolicy({ guard: () => all, scrub: () => all });
  const off = websocketPolicy({ guard: () => [], scrub: () => [] });

  test("toward the upstream: a value in a text, binary, ping or close payload closes with 1008 naming the key", () => {
    for (const [opcode, payload] of [
      [OPCODE.text, Buffer.from(`{"v":"${value}"}`)],
      [OPCODE.binary, Buffer.concat([Buffer.from([0, 255]), Buffer.from(Buffer.from(value).toString("base64"))])],
      [OPCODE.ping, Buffer.from(value)],
      [OPCODE.close, closePayload(1000, value)],
    ] as const) {
      const verdict = policy.toUpstream({ opcode, payload });
      expect("close" in verdict && verdict.close).toBe(CLOSE_CODE.policyViolation);
      expect("close" in verdict && verdict.reason).not.toContain(value);
      expect("close" in verdict && verdict.blocked?.key).toBe("KEY");
    }
    expect(policy.toUpstream({ opcode: OPCODE.text, payload: Buffer.from("clean") })).toEqual({ send: { opcode: OPCODE.text, payload: Buffer.from("clean") } });
    expect("send" in off.toUpstream({ opcode: OPCODE.text, payload: Buffer.from(value) })).toBe(true);
  });

  test("toward the agent: scrubbed, a text message stays valid UTF-8, control frames stay within 125 bytes", () => {
    const text = policy.toAgent({ opcode: OPCODE.text, payload: Buffer.from(`é${value}ü`) });
    expect("send" in text && new TextDecoder("utf-8", { fatal: true }).decode(text.send.payload)).toBe("é[REDACTED:KEY]ü");
    // A value shorter than its marker: scrubbed, the ping would pass 125 bytes, so it goes out empty.
    const short = patternsOf("KEY", "Q7w_e9R2");
    const shortPolicy = websocketPolicy({ guard: () => [], scrub: () => short });
    const ping = shortPolicy.toAgent({ opcode: OPCODE.ping, payload: Buffer.from(`${"x".repeat(115)}Q7w_e9R2`) });
    expect("send" in ping && ping.send.payload.length).toBe(0);
    const fits = policy.toAgent({ opcode: OPCODE.pong, payload: Buffer.from(`${"x".repeat(100)}${value}`) });
    expect("send" in fits && fits.send.payload.toString()).toBe(`${"x".repeat(100)}[REDACTED:KEY]`);
    const close = shortPolicy.toAgent({ opcode: OPCODE.close, payload: closePayload(4000, `${"r".repeat(110)} Q7w_e9R2`) });
    expect("send" in close && close.send.payload.length).toBeLessThanOrEqual(125);
    expect("send" in close && parseClose(close.send.payload).code).toBe(4000);
    expect("send" in close && close.send.payload.toString("latin1")).not.toContain("Q7w_e9R2");
    expect("send" in close && parseClose(close.send.payload).reason).toStartWith(`${"r".repeat(110)} [REDACTED`);
  });
});

test("unmask: word-at-a-time equals byte-at-a-time at every alignment and offset", () => {
  const key = Buffer.from([0x9a, 0x01, 0xfe, 0x37]);
  const pool = Buffer.alloc(300);
  for (let i = 0; i < pool.length; i++) pool[i] = (i * 31) & 0xff;
  for (let start = 0; start < 4; start++) {
    for (let offset = 0; offset < 4; offset++) {
      for (const length of [0, 1, 3, 4, 5, 17, 256]) {
        const data = Buffer.from(pool).subarray(start, start + length);
        const expected = Buffer.from(data.map((b, i) => b ^ key[(offset + i) & 3]!));
        unmask(data, key, offset);
        expect(data.equals(expected)).toBe(true);
      }
    }
  }
});
