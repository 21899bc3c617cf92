// writeParts (src/net/http1-write.ts): what the proxy writes for a body chunk (size line, bytes,
// CRLF) reaches the socket in order and whole, in few writes, no write a lone small part (each
// write is at least one TLS record), and a big part not copied whole.
import { describe, expect, test } from "bun:test";
import { chunk, writeParts } from "../../src/net/http1-write.ts";

function recorder() {
  const writes: Buffer[] = [];
  return { writes, socket: { write: (b: Buffer) => (writes.push(b), true) } };
}

describe("writeParts", () => {
  test("small parts go in one write", () => {
    const { writes, socket } = recorder();
    writeParts(socket, chunk(Buffer.from("hello")));
    expect(writes.map((w) => w.toString())).toEqual(["5\r\nhello\r\n"]);
  });

  test("a big part is written in place between its joined ends, every byte once and in order", () => {
    for (const size of [64 * 1024, 64 * 1024 + 1, 1024 * 1024 + 7, 8 * 1024 * 1024]) {
      const big = Buffer.alloc(size);
      for (let i = 0; i < size; i++) big[i] = (i * 7) & 0xff;
      const head = Buffer.from("HTTP/1.1 200 OK\r\n\r\n");
      const { writes, socket } = recorder();
      writeParts(socket, [head, ...chunk(big)]);
      expect(Buffer.concat(writes).equals(Buffer.concat([head, ...chunk(big)]))).toBe(true);
      expect(writes.length).toBe(3);
      for (const w of writes) expect(w.length).toBeGreaterThanOrEqual(16 * 1024);
      // The middle is a view of the part, not a copy.
      expect(writes[1]!.buffer).toBe(big.buffer);
    }
  });

  test("false from any write is passed on", () => {
    let n = 0;
    const socket = { write: () => ++n !== 2 };
    expect(writeParts(socket, chunk(Buffer.alloc(100 * 1024)))).toBe(false);
  });
});
