// What may cross an open WebSocket, message by message (the `websocket_message` hook of mitmproxy's
// addons): toward the upstream the exfiltration guard, toward the agent scrubbing. Pure: it sees a
// whole message and answers send-this or close-with-this-code; ws-relay.ts moves the bytes.
import { bodyLayers } from "../net/codings.ts";
import { guardScan, type Pattern, scrubText } from "./secrets.ts";
import { scrubWholeBody } from "./whole-body.ts";
import { type Substitution } from "./flow.ts";
import { substituteWhole } from "./substitute.ts";

/** A compressed message is unpacked for the guard and scrubbing up to this (a bomb is refused). */
const MAX_DECODED_MESSAGE_BYTES = 64 * 1024 * 1024;
import { CLOSE_CODE, closePayload, isValidUtf8, MAX_CONTROL_PAYLOAD, OPCODE, parseClose, type WsMessage } from "./websocket.ts";

export type WsVerdict = { readonly send: WsMessage } | { readonly close: number; readonly reason: string; readonly blocked?: Pattern };

export interface WsPolicy {
  /** A whole message (or control frame) from the agent, before any of it leaves. */
  toUpstream(message: WsMessage): WsVerdict;
  /** A whole message (or control frame) from the upstream, before the agent sees it. */
  toAgent(message: WsMessage): WsVerdict;
}

export interface WsPatterns {
  /** The values the agent may not send (empty: the guard is off). Looked up per message, so a new credential counts at once. */
  readonly guard: () => readonly Pattern[];
  /** The forms scrubbed out of what the upstream sends (empty: scrubbing is off). */
  readonly scrub: () => readonly Pattern[];
  /** The session's placeholders for this service and their values (steps/placeholders.ts). */
  readonly substitutions?: () => readonly Substitution[];
  /**
   * Takes one request from the principal's rate limits and usage caps for a data message the
   * agent sends: null lets it go, a reason closes the socket (a message is a request to the API
   * behind it: a codex turn over the Responses WebSocket is one `response.create`).
   */
  readonly admit?: () => string | null;
}

/**
 * Like the HTTP guard, which runs before injection: any value of the vault in a message the agent
 * wrote is an exfiltration, whatever the host. The agent holds placeholders, never a real value,
 * so even its own service's credential in a frame means it found one somewhere. Control frames are
 * checked too: 125 bytes of ping payload at a time is still a channel.
 */
export function websocketPolicy(patterns: WsPatterns): WsPolicy {
  return {
    toUpstream(message) {
      const guard = patterns.guard();
      // Every layer, as for an HTTP body: a binary message may be gzip the upstream unpacks.
      const layers = guard.length > 0 ? (bodyLayers(message.payload, [], MAX_DECODED_MESSAGE_BYTES) ?? null) : [];
      if (layers === null) return { close: CLOSE_CODE.policyViolation, reason: "credential_exfiltration: a compressed message expands past what the guard reads" };
      let hit: Pattern | null = null;
      for (const layer of layers) if (!hit) hit = guardScan(layer.body.toString("latin1"), guard).hit;
      if (!hit) {
        const refusal = (message.opcode & 0x8) === 0 ? (patterns.admit?.() ?? null) : null;
        if (refusal) return { close: CLOSE_CODE.policyViolation, reason: refusal };
        return { send: withValues(message, patterns.substitutions?.() ?? []) };
      }
      return { close: CLOSE_CODE.policyViolation, reason: `credential_exfiltration: a message carried the value of credential ${hit.key}`, blocked: hit };
    },
    toAgent(message) {
      const scrub = patterns.scrub();
      if (scrub.length === 0) return { send: message };
      if (message.opcode === OPCODE.close) {
        // Only the reason is text; the rebuilt payload is cut to fit a control frame.
        const { code } = parseClose(message.payload);
        const reason = message.payload.subarray(2).toString("latin1");
        const clean = scrubText(reason, scrub);
        if (code === null || clean === reason) return { send: message };
        return { send: { opcode: message.opcode, payload: closePayload(code, Buffer.from(clean, "latin1").toString("utf8")) } };
      }
      // Every layer its magic bytes reveal is cleaned, and a changed one compressed again.
      const whole = scrubWholeBody(message.payload, [], scrub, MAX_DECODED_MESSAGE_BYTES);
      if ("unreadable" in whole) return { close: CLOSE_CODE.policyViolation, reason: "a compressed message expands past what scrubbing reads" };
      if ("refused" in whole)
        return { close: CLOSE_CODE.policyViolation, reason: `a message carried the value of credential ${whole.refused.key} in a spelling that cannot be replaced where it stands` };
      const payload = whole.body;
      if (payload.equals(message.payload)) return { send: message };
      // A value is whole UTF-8 characters and its replacement is ASCII, so a text message stays
      // valid; checked anyway, since an invalid one would make the agent's client fail the socket.
      if (message.opcode === OPCODE.text && !isValidUtf8(payload)) return { close: CLOSE_CODE.internalError, reason: "a scrubbed message was not valid UTF-8" };
      // The marker is longer than some values: a ping or pong that no longer fits loses its
      // payload, never keeps an unscrubbed one.
      if (payload.length > MAX_CONTROL_PAYLOAD && (message.opcode & 0x8) !== 0) return { send: { opcode: message.opcode, payload: Buffer.alloc(0) } };
      return { send: { opcode: message.opcode, payload } };
    },
  };
}

/**
 * After the guard passed a data message: the agent's placeholders become values (a Slack token in
 * a JSON body, a Discord gateway IDENTIFY). Control frames keep theirs: a ping has no use for a
 * token, and a value could overflow its 125 bytes. A value is UTF-8, so a text message stays valid.
 */
function withValues(message: WsMessage, substitutions: readonly Substitution[]): WsMessage {
  if (substitutions.length === 0 || (message.opcode & 0x8) !== 0) return message;
  // A text message is JSON where a gateway takes a token (Discord's IDENTIFY); a binary one has no field.
  const payload = substituteWhole(message.payload, substitutions, message.opcode === 0x1 ? "json" : "none");
  return payload === message.payload ? message : { opcode: message.opcode, payload };
}
