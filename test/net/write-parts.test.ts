// writeParts and ChunkedWriter (src/net/http1-write.ts): what the proxy writes for a body chunk
// (size line, bytes, CRLF) reaches the socket in order and whole, in few writes, no lone small
// part where it can join another (each write is at least one TLS record), a big part never copied,
// and no second write queued behind a big part in the same turn (Bun joins those with a copy).
import { describe, expect, test } from "bun:test";
import { type AddressInfo } from "node:net";
import tls from "node:tls";
import { ChunkedWriter, chunk, LAST_CHUNK, writeParts } from "../../src/net/http1-write.ts";
import { createCertificateAuthority, LeafCertificates } from "../../src/proxy/certs.ts";

function recorder() {
  const writes: Buffer[] = [];
  return { writes, socket: { write: (b: Buffer) => (writes.push(b), true) } };
}

function patterned(size: number): Buffer {
  const big = Buffer.alloc(size);
  for (let i = 0; i < size; i++) big[i] = (i * 7) & 0xff;
  return big;
}

const nextTick = () => new Promise<void>((resolve) => process.nextTick(resolve));
const afterIo = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("writeParts", () => {
  test("small parts go in one write", () => {
    const { writes, socket } = recorder();
    writeParts(socket, chunk(Buffer.from("hello")));
    expect(writes.map((w) => w.toString())).toEqual(["5\r\nhello\r\n"]);
  });

  test("a big part is written in place, alone, after the small parts before it joined", () => {
    for (const size of [4 * 1024, 64 * 1024 + 1, 1024 * 1024 + 7, 8 * 1024 * 1024]) {
      const big = patterned(size);
      const head = Buffer.from("HTTP/1.1 200 OK\r\n\r\n");
      const held = Buffer.from("held tail");
      const { writes, socket } = recorder();
      writeParts(socket, [head, held, big]);
      expect(Buffer.concat(writes).equals(Buffer.concat([head, held, big]))).toBe(true);
      expect(writes.length).toBe(2);
      // The big part is the part itself, not a copy.
      expect(writes[1]).toBe(big);
    }
  });

  test("false from any write is passed on", () => {
    let n = 0;
    const socket = { write: () => ++n !== 2 };
    expect(writeParts(socket, chunk(Buffer.alloc(100 * 1024)))).toBe(false);
  });
});

describe("ChunkedWriter", () => {
  test("a small chunk is one write with its CRLF", () => {
    const { writes, socket } = recorder();
    const w = new ChunkedWriter((parts) => writeParts(socket, parts));
    w.write([Buffer.from("hel"), Buffer.from("lo")]);
    w.end();
    expect(writes.map((b) => b.toString())).toEqual(["5\r\nhello\r\n", "0\r\n\r\n"]);
  });

  test("a big chunk: its size line, the part in place, and the CRLF alone once the turn's I/O is done", async () => {
    const { writes, socket } = recorder();
    const w = new ChunkedWriter((parts) => writeParts(socket, parts));
    const big = patterned(64 * 1024);
    w.write([big]);
    expect(writes.length).toBe(2);
    expect(writes[1]).toBe(big);
    // Not on the next tick: the socket has not taken the big part yet then.
    await nextTick();
    expect(writes.length).toBe(2);
    await afterIo();
    expect(writes.map((b) => b.length)).toEqual(["10000\r\n".length, big.length, 2]);
    expect(writes[2]!.toString()).toBe("\r\n");
    w.end();
    expect(Buffer.concat(writes).equals(Buffer.concat([...chunk(big), LAST_CHUNK]))).toBe(true);
  });

  test("chunks in one turn: each owed CRLF rides on the next size line or the last chunk; the bytes are the plain encoding", async () => {
    const { writes, socket } = recorder();
    const w = new ChunkedWriter((parts) => writeParts(socket, parts));
    const pieces = [patterned(64 * 1024), Buffer.from("small"), patterned(20 * 1024), patterned(5 * 1024 + 3)];
    for (const p of pieces) w.write([p]);
    w.write([Buffer.alloc(0)]);
    w.end();
    await afterIo();
    expect(Buffer.concat(writes).equals(Buffer.concat([...pieces.flatMap((p) => chunk(p)), LAST_CHUNK]))).toBe(true);
    // No lone CRLF: the turn ended with nothing owed.
    expect(writes.some((b) => b.toString() === "\r\n")).toBe(false);
    // Every big part went in place.
    for (const p of pieces.filter((p) => p.length >= 4096)) expect(writes.includes(p)).toBe(true);
  });
});

describe("ChunkedWriter on a TLS socket", () => {
  // Under Bun a TLS socket calls back each write on the next tick; writes made before then wait in
  // the stream's buffer, and two or more waiting are joined by Buffer.concat in _writev. Written as
  // the proxy writes a download (a chunk per read, pausing on false until drain), no big part may
  // ever be among the joined.
  test("a big part is never joined to the CRLF after it by a copy", async () => {
    const ca = createCertificateAuthority();
    const leaves = new LeafCertificates(ca);
    const server = tls.createServer({ SNICallback: (name, cb) => cb(null, leaves.contextFor(name)) });
    let received = 0;
    server.on("secureConnection", (socket) => socket.on("data", (bytes: Buffer) => (received += bytes.length)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const socket = tls.connect({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, servername: "localhost", ca: ca.certPem });
    await new Promise<void>((resolve) => socket.once("secureConnect", () => resolve()));
    const joins: number[][] = [];
    const writev = (socket as unknown as { _writev: (chunks: { chunk: Buffer }[], cb: () => void) => void })._writev;
    Object.assign(socket, {
      _writev(chunks: { chunk: Buffer }[], cb: () => void) {
        joins.push(chunks.map((c) => c.chunk.length));
        return writev.call(this, chunks, cb);
      },
    });
    const w = new ChunkedWriter((parts) => writeParts(socket, parts));
    const big = patterned(256 * 1024);
    const chunks = 64;
    for (let i = 0; i < chunks; i++) {
      if (!w.write([big])) await new Promise<void>((resolve) => socket.once("drain", () => resolve()));
      // The next read arrives in a later turn, as from a socket.
      await afterIo();
    }
    w.end();
    const total = chunks * chunk(big).reduce((n, b) => n + b.length, 0) + LAST_CHUNK.length;
    for (let i = 0; received < total && i < 500; i++) await Bun.sleep(10);
    socket.destroy();
    server.close();
    expect(received).toBe(total);
    expect(joins.filter((lengths) => lengths.some((n) => n >= 4096))).toEqual([]);
  });
});
