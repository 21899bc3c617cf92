// RequestSender (src/proxy/request-sender.ts) with a fake upstream socket that is always full:
// the body the guard read before streaming (up to 8 MiB) goes in 1 MiB slices, the next only once
// the socket drained, so the socket never buffers the whole head beside ours; then the stream.
import { describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { type Socket } from "node:net";
import { type InboundRequest } from "../../src/net/inbound.ts";
import { RequestSender } from "../../src/proxy/request-sender.ts";
import { StreamGuard } from "../../src/proxy/secrets.ts";

function fakes() {
  const writes: Buffer[] = [];
  const socket = Object.assign(new EventEmitter(), { write: (b: Buffer) => (writes.push(Buffer.from(b)), false) });
  const agentSocket = Object.assign(new EventEmitter(), { pause: () => undefined, resume: () => undefined });
  const req = Object.assign(new EventEmitter(), { readableEnded: false, socket: agentSocket, pause: () => req, resume: () => req });
  return { writes, socket, req };
}

describe("RequestSender", () => {
  test("a streamed body's 8 MiB head is written a slice per drain, then the rest streams", () => {
    const { writes, socket, req } = fakes();
    let sent = false;
    const sender = new RequestSender(
      req as unknown as InboundRequest,
      socket as unknown as Socket,
      { isChunked: false, maxRequestBytes: 1 << 30 },
      {
        sent: () => (sent = true),
        refused: () => undefined,
        blocked: () => ({ code: "credential_exfiltration", message: "" }) as never,
      },
    );
    // The head in the pieces it was read in (not joined: RSS); each is sliced.
    const MiB = 1024 * 1024;
    const head = [Buffer.alloc(3 * MiB + 5, 0x61), Buffer.alloc(10, 0x62), Buffer.alloc(5 * MiB - 15, 0x63)];
    sender.start({ kind: "stream", head, guard: new StreamGuard([]) });
    expect(writes.map((w) => w.length)).toEqual([MiB]);
    const expected = [MiB, MiB, MiB, 5, 10, MiB, MiB, MiB, MiB, MiB - 15];
    for (let i = 1; i < expected.length; i++) socket.emit("drain");
    expect(writes.map((w) => w.length)).toEqual(expected);
    expect(req.listenerCount("data")).toBe(1);
    req.emit("data", Buffer.from("tail"));
    req.emit("end");
    expect(Buffer.concat(writes).equals(Buffer.concat([...head, Buffer.from("tail")]))).toBe(true);
    expect(sent).toBe(true);
  });

  test("stopped mid-head, nothing more is written", () => {
    const { writes, socket, req } = fakes();
    const sender = new RequestSender(
      req as unknown as InboundRequest,
      socket as unknown as Socket,
      { isChunked: false, maxRequestBytes: 1 << 30 },
      {
        sent: () => undefined,
        refused: () => undefined,
        blocked: () => ({ code: "credential_exfiltration", message: "" }) as never,
      },
    );
    sender.start({ kind: "stream", head: [Buffer.alloc(3 * 1024 * 1024)], guard: new StreamGuard([]) });
    sender.stop();
    socket.emit("drain");
    expect(writes.length).toBe(1);
    expect(req.listenerCount("data")).toBe(0);
  });
});
