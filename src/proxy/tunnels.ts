// The two kinds of CONNECT tunnel, as bytes. Which one a CONNECT gets is decided in pipeline.ts
// (steps/route.ts); a refused CONNECT never reaches here.
//   - intercept: the agent's TLS is terminated on the accepted socket with a leaf for its SNI name
//     (certs.ts), and the listener reads HTTP/1.1 on the TLS socket;
//   - passthrough: a plain TCP pipe to the address netguard checked, never read.
import net, { type Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { type LeafCertificates } from "./certs.ts";
import { countRelayed } from "../net/memory.ts";
import { type Dial } from "../net/netguard.ts";

export const CONNECT_ESTABLISHED = "HTTP/1.1 200 Connection Established\r\n\r\n";

/** Terminates the agent's TLS; `rest` is what the agent sent after its CONNECT head. */
export function intercept(socket: Socket, rest: Buffer, host: string, leaves: LeafCertificates): TLSSocket {
  socket.write(CONNECT_ESTABLISHED);
  if (rest.length > 0) socket.unshift(rest);
  const secure = new TLSSocket(socket, {
    isServer: true,
    secureContext: leaves.contextFor(host),
    SNICallback: (name, callback) => {
      try {
        callback(null, leaves.contextFor(name || host));
      } catch (error) {
        callback(error as Error);
      }
    },
    ALPNProtocols: ["http/1.1"],
  });
  secure.on("error", () => secure.destroy());
  socket.resume();
  return secure;
}

/** Pipes the agent to the dialled address; `failed` gets a dial error before anything was relayed. */
export function passthrough(socket: Socket, rest: Buffer, dial: Dial, events: { connected: () => void; failed: (error: NodeJS.ErrnoException) => void }): void {
  const upstream = net.connect({ host: dial.address, port: dial.port });
  let connected = false;
  upstream.once("connect", () => {
    connected = true;
    socket.write(CONNECT_ESTABLISHED);
    if (rest.length > 0) upstream.write(rest);
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.on("data", (data: Buffer) => countRelayed(data.length));
    upstream.on("data", (data: Buffer) => countRelayed(data.length));
    socket.resume();
    events.connected();
  });
  upstream.once("error", (error: NodeJS.ErrnoException) => {
    if (!connected) events.failed(error);
    else socket.destroy();
  });
  socket.once("close", () => upstream.destroy());
  upstream.once("close", () => socket.destroy());
}
