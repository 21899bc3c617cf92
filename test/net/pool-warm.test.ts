// UpstreamPool.warm (src/net/pool.ts): a connection opened ahead of its first request, taken by the
// first acquire for its endpoint, or left idle like any other. Against a local TLS server that
// counts the connections it accepts and can hold its handshake back (so a warm-up is still opening
// when the acquire comes).
import { afterAll, describe, expect, test } from "bun:test";
import { type AddressInfo, type Socket } from "node:net";
import tls from "node:tls";
import { type Endpoint, UpstreamPool } from "../../src/net/pool.ts";
import { createCertificateAuthority, LeafCertificates } from "../../src/proxy/certs.ts";
import { waitUntil } from "../support/process.ts";

const ca = createCertificateAuthority();
const leaves = new LeafCertificates(ca);
const stranger = new LeafCertificates(createCertificateAuthority());

interface TestServer {
  readonly port: number;
  /** TCP connections accepted, and TLS handshakes done (server side). */
  readonly tcp: Socket[];
  readonly secure: tls.TLSSocket[];
  /** Holds each handshake back this long. */
  delayMs: number;
}

const servers: tls.Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

async function startServer(options: { certificates?: LeafCertificates } = {}): Promise<TestServer> {
  const certs = options.certificates ?? leaves;
  const state = { port: 0, tcp: [] as Socket[], secure: [] as tls.TLSSocket[], delayMs: 0 };
  const server = tls.createServer({ SNICallback: (name, cb) => setTimeout(() => cb(null, certs.contextFor(name)), state.delayMs) }, (socket) => {
    state.secure.push(socket);
    socket.on("error", () => undefined);
  });
  server.on("connection", (socket: Socket) => state.tcp.push(socket));
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  servers.push(server);
  state.port = (server.address() as AddressInfo).port;
  return state;
}

let hosts = 0;
/** A host name of its own per test, so no pool state is shared. */
function endpointOf(server: TestServer): Endpoint {
  return { scheme: "https", host: `api${++hosts}.warm.test`, dial: { address: "127.0.0.1", port: server.port } };
}

describe("UpstreamPool.warm", () => {
  test("warm, then acquire: the acquire takes the warm connection, nothing else is dialled", async () => {
    const server = await startServer();
    const pool = new UpstreamPool([ca.certPem]);
    const endpoint = endpointOf(server);
    pool.warm(endpoint);
    await waitUntil("the warm connection", () => server.secure.length === 1, 2_000);
    const { socket } = await pool.acquire(endpoint);
    await Bun.sleep(50);
    expect(server.tcp.length).toBe(1);
    socket.destroy();
    pool.destroy();
  });

  test("an acquire while the warm-up still opens waits for it; the socket is the acquirer's alone, never also idle", async () => {
    const server = await startServer();
    server.delayMs = 150;
    const pool = new UpstreamPool([ca.certPem]);
    const endpoint = endpointOf(server);
    pool.warm(endpoint);
    const first = await pool.acquire(endpoint);
    expect(server.tcp.length).toBe(1);
    // The first socket is in use: a second acquire must not be handed it again.
    const second = await pool.acquire(endpoint);
    expect(second.socket).not.toBe(first.socket);
    expect(server.tcp.length).toBe(2);
    first.socket.destroy();
    second.socket.destroy();
    pool.destroy();
  });

  test("warm-ups for one endpoint while one opens, or one is idle: a single connection", async () => {
    const server = await startServer();
    server.delayMs = 100;
    const pool = new UpstreamPool([ca.certPem]);
    const endpoint = endpointOf(server);
    for (let i = 0; i < 10; i++) pool.warm(endpoint);
    await waitUntil("the warm connection", () => server.secure.length === 1, 2_000);
    for (let i = 0; i < 10; i++) pool.warm(endpoint);
    await Bun.sleep(300);
    expect(server.tcp.length).toBe(1);
    pool.destroy();
  });

  test("a warm-up that fails (the certificate does not verify) is forgotten: the acquire dials again and reports its own failure", async () => {
    const server = await startServer({ certificates: stranger });
    const pool = new UpstreamPool([ca.certPem]);
    const endpoint = endpointOf(server);
    pool.warm(endpoint);
    await waitUntil("the warm-up's connection", () => server.tcp.length === 1, 2_000);
    await Bun.sleep(100);
    const error = await pool.acquire(endpoint).then(
      () => null,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(error?.code).toMatch(/CERT|SELF_SIGNED|UNABLE/);
    expect(server.tcp.length).toBe(2);
    pool.destroy();
  });

  test("a fresh acquire never takes the warm connection; the next plain acquire finds it idle", async () => {
    const server = await startServer();
    server.delayMs = 100;
    const pool = new UpstreamPool([ca.certPem]);
    const endpoint = endpointOf(server);
    pool.warm(endpoint);
    const fresh = await pool.acquire(endpoint, true);
    expect(server.tcp.length).toBe(2);
    await waitUntil("both handshakes", () => server.secure.length === 2, 2_000);
    await Bun.sleep(20);
    const next = await pool.acquire(endpoint);
    expect(next.reused).toBe(true);
    expect(next.socket).not.toBe(fresh.socket);
    expect(server.tcp.length).toBe(2);
    fresh.socket.destroy();
    next.socket.destroy();
    pool.destroy();
  });

  test("a warm connection the upstream closed while idle is dropped: the acquire dials anew", async () => {
    const server = await startServer();
    const pool = new UpstreamPool([ca.certPem]);
    const endpoint = endpointOf(server);
    pool.warm(endpoint);
    await waitUntil("the warm connection", () => server.secure.length === 1, 2_000);
    server.secure[0]!.destroy();
    await Bun.sleep(100);
    const { socket, reused } = await pool.acquire(endpoint);
    expect(reused).toBe(false);
    expect(server.tcp.length).toBe(2);
    socket.destroy();
    pool.destroy();
  });

  // destroy() closes a warm-up still opening too, once it opens: kept idle in the closed pool it
  // would hold the process open for the idle timeout (60 s), and a self-served `run` would linger.
  test("destroy() while a warm-up opens: that connection is closed once it opens, not kept idle", async () => {
    const server = await startServer();
    server.delayMs = 100;
    const pool = new UpstreamPool([ca.certPem]);
    pool.warm(endpointOf(server));
    pool.destroy();
    const tcp = await waitUntil("the warm-up's connection", () => server.tcp[0], 2_000);
    // Its handshake is held back 100 ms; then it must close, not wait out the idle timeout.
    const closed = new Promise<boolean>((resolve) => {
      tcp.once("close", () => resolve(true));
      setTimeout(() => resolve(false), 1_500);
    });
    expect(await closed).toBe(true);
  });

  test("warm-ups to many names without a request stop at 32 upstream connections", async () => {
    const server = await startServer();
    const pool = new UpstreamPool([ca.certPem]);
    for (let i = 0; i < 60; i++) pool.warm(endpointOf(server));
    await waitUntil("the warm connections", () => server.secure.length >= 32, 5_000);
    await Bun.sleep(200);
    expect(server.tcp.length).toBe(32);
    // One more is refused too, until a request takes one or they close (10 s unused).
    pool.warm(endpointOf(server));
    await Bun.sleep(200);
    expect(server.tcp.length).toBe(32);
    pool.destroy();
  });
});
