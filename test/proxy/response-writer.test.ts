// ResponseWriter (src/proxy/response-writer.ts) under backpressure: the parser hands over several
// pieces of one upstream read while the agent's socket is full; they share one wait for its drain
// (a listener each made Node's MaxListenersExceededWarning in the server's log), the upstream is
// paused until then and resumed once, scrubbed or not.
import { describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { type Socket } from "node:net";
import { type InboundResponse } from "../../src/net/inbound.ts";
import { ResponseWriter } from "../../src/proxy/response-writer.ts";
import { patternsOf } from "../../src/proxy/secrets.ts";

/** An agent-side response whose socket is full (every write says wait), and an upstream that counts pauses. */
function fixture(scrub: boolean) {
  const res = Object.assign(new EventEmitter(), {
    written: [] as Buffer[],
    headersSent: false,
    writeHead() {
      this.headersSent = true;
      return this;
    },
    flushHeaders() {},
    write(b: Buffer) {
      this.written.push(b);
      return false;
    },
    writeParts(parts: readonly Buffer[]) {
      this.written.push(...parts);
      return false;
    },
    end() {},
  });
  const upstream = {
    paused: 0,
    resumed: 0,
    pause() {
      this.paused++;
    },
    resume() {
      this.resumed++;
    },
  };
  const patterns = patternsOf("KEY", "sk_live_0123456789abcdefghij");
  const writer = new ResponseWriter(res as unknown as InboundResponse, upstream as unknown as Socket, {
    maxResponseBytes: 1 << 30,
    extraHeaders: undefined,
    scrub: scrub ? () => patterns : undefined,
    range: undefined,
    cut: () => {
      throw new Error("cut");
    },
  });
  // Over the size scrubbed whole: the body streams.
  writer.head({ version: "1.1", status: 200, reason: "OK", headers: [["content-length", String(1 << 20)]] }, { kind: "length", length: 1 << 20 });
  return { res, upstream, writer };
}

describe("ResponseWriter under backpressure", () => {
  for (const scrub of [false, true]) {
    test(`${scrub ? "scrubbed" : "passed as is"}: twenty pieces while the agent is full wait on one drain listener`, () => {
      const { res, upstream, writer } = fixture(scrub);
      for (let i = 0; i < 20; i++) writer.body(Buffer.alloc(16 * 1024, "a\n"));
      expect(res.listenerCount("drain")).toBe(1);
      expect(upstream.paused).toBeGreaterThan(0);
      expect(upstream.resumed).toBe(0);
      res.emit("drain");
      expect(res.listenerCount("drain")).toBe(0);
      expect(upstream.resumed).toBe(upstream.paused);
      // Every byte was handed on, in order.
      expect(Buffer.concat(res.written).toString()).toBe("a\n".repeat(20 * 8 * 1024));
    });
  }
});
