// Moves an open WebSocket's messages between the agent and the upstream: each direction's bytes are
// parsed into whole messages (websocket.ts), each message is put to the policy (ws-policy.ts), and
// only what the policy passes is framed again: unmasked toward the agent, masked with a fresh key
// toward the upstream. Nothing is relayed as raw bytes, so a message the policy refuses never
// leaves, not even its first fragment. Backpressure both ways: a slow reader pauses the other side.
import { type Socket } from "node:net";
import { type Pattern } from "./secrets.ts";
import { type WsPolicy } from "./ws-policy.ts";
import { CLOSE_CODE, closePayload, encodeFrame, FrameParser, OPCODE, type WsFailure } from "./websocket.ts";

/** How long a closing connection may take to say goodbye before both sockets are destroyed. */
const CLOSE_GRACE_MS = 2_000;

export interface RelayOptions {
  readonly agent: Socket;
  readonly upstream: Socket;
  /** Bytes the agent sent after its handshake, before the relay started. */
  readonly agentHead: Buffer;
  /** Bytes the upstream sent after its 101. */
  readonly upstreamHead: Buffer;
  readonly policy: WsPolicy;
  readonly maxMessageBytes?: number;
  /** A message was refused by the guard (for the request log; the key, never the value). */
  readonly onBlocked: (hit: Pattern) => void;
  /** The relay ended, with the close code it ended on when it ended it itself. */
  readonly onEnd?: (failure: WsFailure | null) => void;
}

export function relayWebSocket(options: RelayOptions): void {
  const { agent, upstream, policy } = options;
  const fromAgent = new FrameParser({ fromClient: true, ...(options.maxMessageBytes ? { maxMessageBytes: options.maxMessageBytes } : {}) });
  const fromUpstream = new FrameParser({ fromClient: false, ...(options.maxMessageBytes ? { maxMessageBytes: options.maxMessageBytes } : {}) });
  let ended = false;
  let closedToUpstream = false;
  let closedToAgent = false;

  const finish = (failure: WsFailure | null) => {
    if (ended) return;
    ended = true;
    agent.off("data", onAgentData);
    upstream.off("data", onUpstreamData);
    options.onEnd?.(failure);
  };

  /** Ends both sides with a close frame carrying `failure.code` (the agent also gets the reason). */
  const shutdown = (failure: WsFailure) => {
    if (ended) return;
    finish(failure);
    if (!closedToAgent && !agent.destroyed) agent.end(encodeFrame(OPCODE.close, closePayload(failure.code, failure.reason), { masked: false }));
    if (!closedToUpstream && !upstream.destroyed) upstream.end(encodeFrame(OPCODE.close, closePayload(failure.code), { masked: true }));
    setTimeout(() => {
      agent.destroy();
      upstream.destroy();
    }, CLOSE_GRACE_MS).unref();
  };

  const pump = (bytes: Buffer, parser: FrameParser, toUpstream: boolean): void => {
    const { messages, failure } = parser.push(bytes);
    const target = toUpstream ? upstream : agent;
    const source = toUpstream ? agent : upstream;
    let full = false;
    for (const message of messages) {
      const verdict = toUpstream ? policy.toUpstream(message) : policy.toAgent(message);
      if ("close" in verdict) {
        if (verdict.blocked) options.onBlocked(verdict.blocked);
        return shutdown({ code: verdict.close, reason: verdict.reason });
      }
      if (target.destroyed) return;
      if (!target.write(encodeFrame(verdict.send.opcode, verdict.send.payload, { masked: toUpstream }))) full = true;
      if (verdict.send.opcode === OPCODE.close) {
        if (toUpstream) closedToUpstream = true;
        else closedToAgent = true;
        // Both sides said goodbye: the server closes TCP first (7.1.1); the agent's side follows.
        if (closedToUpstream && closedToAgent) {
          finish(null);
          agent.end();
          setTimeout(() => upstream.destroy(), CLOSE_GRACE_MS).unref();
          return;
        }
      }
    }
    if (failure) return shutdown(failure);
    if (full) {
      source.pause();
      target.once("drain", () => source.resume());
    }
  };

  const onAgentData = (bytes: Buffer) => pump(bytes, fromAgent, true);
  const onUpstreamData = (bytes: Buffer) => pump(bytes, fromUpstream, false);
  agent.on("data", onAgentData);
  upstream.on("data", onUpstreamData);
  // One side went away: the other is told the connection went away and closed too.
  agent.once("close", () => {
    if (!ended) shutdown({ code: CLOSE_CODE.goingAway, reason: "" });
    else upstream.end();
  });
  upstream.once("close", () => {
    if (!ended) shutdown({ code: CLOSE_CODE.goingAway, reason: "the upstream closed the connection" });
    else agent.end();
  });
  agent.on("error", () => agent.destroy());
  upstream.on("error", () => upstream.destroy());
  if (options.upstreamHead.length > 0) onUpstreamData(options.upstreamHead);
  if (options.agentHead.length > 0 && !ended) onAgentData(options.agentHead);
  agent.resume();
  upstream.resume();
}
