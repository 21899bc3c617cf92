// A WebSocket handshake whose flow went through the request steps: the handshake is sent
// upstream, its answer read (upgrade.ts), and after a 101 every message both ways is read and
// checked (ws-relay.ts, ws-policy.ts). Bytes only: the guard and scrubbing switches come from the
// flow and the vault's current settings.
import net, { type Socket } from "node:net";
import tls from "node:tls";
import { requestHead } from "../net/http1.ts";
import { type Answer, problem } from "../shared/answers.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { describeUpstreamError } from "./exchange.ts";
import { type Flow } from "./flow.ts";
import { type Pattern } from "./secrets.ts";
import { readHandshakeAnswer, refusalBytes, switchHead, switchProblem } from "./upgrade.ts";
import { websocketPolicy } from "./ws-policy.ts";
import { relayWebSocket } from "./ws-relay.ts";

export interface WebSocketDeps {
  /** The upstream trust (net/trust.ts), as one TLS context. */
  readonly tlsContext: tls.SecureContext;
  /** The vault as it is now (settings may change while the socket is open). */
  readonly current: () => VaultRecord;
  readonly secrets: (vault: VaultRecord) => readonly Pattern[];
  readonly refuse: (answer: Answer) => void;
  readonly logged: (status: number) => void;
  readonly blocked: (hit: Pattern) => void;
  /** A data message from the agent against the rate limits and caps (WsPatterns.admit). */
  readonly admit?: () => string | null;
}

/**
 * Opens the upstream WebSocket for a flow the steps allowed. `early` holds what the agent sent
 * after its handshake (frames it may send before the 101), `hold` keeps collecting until the
 * switch, and `key` is the agent's Sec-WebSocket-Key.
 */
export async function openWebSocket(flow: Flow, agent: Socket, key: string, takeEarly: () => Buffer, deps: WebSocketDeps): Promise<void> {
  // permessage-deflate is never offered: compressed frames could not be checked without inflating
  // them (a second bomb surface and a compressor state per side); an extension is optional, so
  // every server must work without one. An upstream that negotiates one anyway is refused in
  // switchProblem.
  delete flow.headers["sec-websocket-extensions"];
  const dial = flow.dial!;
  const useTls = flow.scheme === "https";
  const upstream: Socket = useTls
    ? tls.connect({
        host: dial.address,
        port: dial.port,
        ...(net.isIP(flow.host) === 0 ? { servername: flow.host } : {}),
        secureContext: deps.tlsContext,
        checkServerIdentity: (_h, cert) => tls.checkServerIdentity(flow.host, cert),
      })
    : net.connect({ host: dial.address, port: dial.port });
  agent.once("close", () => upstream.destroy());
  const connectError = await new Promise<Answer | null>((resolve) => {
    upstream.once(useTls ? "secureConnect" : "connect", () => resolve(null));
    upstream.once("error", (error: NodeJS.ErrnoException) => resolve(describeUpstreamError(error, flow.host)));
  });
  upstream.on("error", () => upstream.destroy());
  if (connectError) return deps.refuse(connectError);
  let head: Buffer;
  try {
    head = requestHead(flow.method, flow.path, { ...flow.headers, host: flow.headers.host ?? flow.host });
  } catch (error) {
    upstream.destroy();
    return deps.refuse(problem("invalid_request", `the handshake to ${flow.host} cannot be written: ${(error as Error).message}`));
  }
  upstream.write(head);
  const scrubbing = (): readonly Pattern[] => {
    const now = deps.current();
    return now.settings.scrub ? deps.secrets(now) : [];
  };
  const failed = (message: string) => {
    upstream.destroy();
    deps.refuse(problem("upstream_error", `${flow.host}: ${message}`));
  };
  const reply = await readHandshakeAnswer(upstream);
  if ("error" in reply) return failed(reply.error);
  if (reply.status !== 101) {
    // A refusal (401, 426 ...) is an HTTP answer like any other: the agent sees it scrubbed.
    const refusal = refusalBytes(reply, scrubbing());
    upstream.destroy();
    if ("error" in refusal) return failed(refusal.error);
    agent.end(refusal);
    return deps.logged(reply.status);
  }
  const invalid = switchProblem(reply, key);
  if (invalid) return failed(`refused its answer to the WebSocket handshake: ${invalid}`);
  if (agent.destroyed) return void upstream.destroy();
  agent.write(switchHead(reply, scrubbing()));
  deps.logged(101);
  relayWebSocket({
    agent,
    upstream,
    agentHead: takeEarly(),
    upstreamHead: reply.rest,
    policy: websocketPolicy({
      guard: () => {
        const now = deps.current();
        return now.settings.guard ? deps.secrets(now) : [];
      },
      scrub: scrubbing,
      ...(flow.substitutions ? { substitutions: flow.substitutions } : {}),
      ...(deps.admit ? { admit: deps.admit } : {}),
    }),
    onBlocked: deps.blocked,
  });
}
