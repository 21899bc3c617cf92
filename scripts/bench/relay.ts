// The floor of the proxy benchmark: a bare TLS-terminating CONNECT relay with no policy at all,
// run as its own process beside `agent-vault server`. It does what any intercepting proxy must and
// nothing else: reads the CONNECT head, answers 200, opens the upstream TLS connection at once
// (as agent-vault's warm-up does), terminates the agent's TLS with a leaf minted for the name, and
// copies bytes both ways without reading them, with backpressure. Same runtime, same socket and TLS stack as the
// server (node:net, tls.TLSSocket on the accepted socket, tls.connect upstream), so the gap between
// it and a direct connection is what terminating TLS costs on this machine, and the gap between it
// and agent-vault is what agent-vault's own work costs.
//
// Usage: bun scripts/bench/relay.ts UPSTREAM_PORT UPSTREAM_CA_FILE DIR; prints {"port","caFile"}.
import { readFileSync, writeFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import tls from "node:tls";
import { createCertificateAuthority, LeafCertificates } from "../../src/proxy/certs.ts";

const [portArg, caArg, dir] = process.argv.slice(2);
if (!portArg || !caArg || !dir) throw new Error("usage: relay.ts UPSTREAM_PORT UPSTREAM_CA_FILE DIR");
const upstreamPort = Number(portArg);
const upstreamTrust = tls.createSecureContext({ ca: readFileSync(caArg) });
const ca = createCertificateAuthority();
const caFile = `${dir}/relay-ca.pem`;
writeFileSync(caFile, ca.certPem);
const leaves = new LeafCertificates(ca);

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let head = Buffer.alloc(0);
  const onHead = (data: Buffer) => {
    head = Buffer.concat([head, data]);
    const end = head.indexOf("\r\n\r\n");
    if (end === -1) return;
    socket.off("data", onHead);
    socket.pause();
    const name = /^CONNECT ([^:\s]+):\d+ /.exec(head.toString("latin1"))?.[1] ?? "localhost";
    const upstream = tls.connect({ host: "127.0.0.1", port: upstreamPort, servername: name, secureContext: upstreamTrust, ALPNProtocols: ["http/1.1"] });
    upstream.setNoDelay(true);
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    const rest = head.subarray(end + 4);
    if (rest.length > 0) socket.unshift(rest);
    const agent = new tls.TLSSocket(socket, { isServer: true, secureContext: leaves.contextFor(name), ALPNProtocols: ["http/1.1"] });
    // Piped both ways once the upstream is up (with backpressure, as the proxy streams bodies);
    // what the agent sends before waits in its paused stream.
    agent.pause();
    upstream.once("secureConnect", () => {
      agent.pipe(upstream);
      upstream.pipe(agent);
    });
    const close = () => {
      agent.destroy();
      upstream.destroy();
    };
    for (const side of [agent, upstream]) {
      side.on("error", close);
      side.on("close", close);
    }
    socket.resume();
  };
  socket.on("data", onHead);
  socket.on("error", () => socket.destroy());
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port, caFile })}\n`);
});
