// Upgrades on connections the proxy reads (tunnels it intercepts, plain http:// requests). Only a
// WebSocket is ever upgraded, after its handshake went through the pipeline, and its messages are
// then read one by one (ws-relay.ts). Every other offer (h2c, TLS/1.0, a made-up protocol) is
// removed by steps/headers.ts and the request takes the plain HTTP/1.1 path, so the guard,
// injection and scrubbing see it like any other: a server may always ignore an Upgrade (RFC 9110 7.8). An upstream that
// answers a WebSocket handshake with anything we cannot read (an extension we did not offer, a
// switch to another protocol) is refused; its answer never reaches the agent as raw bytes.
import { createHash } from "node:crypto";
import { type Socket } from "node:net";
import { headerValues as header, type ResponseHead, ResponseParser } from "../net/http1.ts";
import { type InboundRequest } from "../net/inbound.ts";
import { messageCodings } from "../net/codings.ts";
import { type Pattern, scrubText } from "./secrets.ts";
import { scrubWholeBody } from "./whole-body.ts";

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** The upstream's handshake answer: its head, and a refusal's body (which the agent sees scrubbed). */
const MAX_ANSWER_HEAD_BYTES = 64 * 1024;
const MAX_ANSWER_BODY_BYTES = 1024 * 1024;
const ANSWER_TIMEOUT_MS = 30_000;
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length"]);

function rawValues(req: InboundRequest, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === name) out.push(req.rawHeaders[i + 1]!);
  return out;
}

/** A WebSocket opening handshake (RFC 6455 4.1): GET with exactly one `Upgrade: websocket`. */
export function isWebSocketOffer(req: InboundRequest): boolean {
  const upgrade = rawValues(req, "upgrade");
  return req.method === "GET" && upgrade.length === 1 && upgrade[0]!.trim().toLowerCase() === "websocket";
}

/** What is wrong with a WebSocket handshake, strictly: a body or a bad key would be bytes we relay unread. */
export function webSocketHandshakeProblem(req: InboundRequest): string | null {
  if (req.httpVersion !== "1.1") return "a WebSocket handshake must be HTTP/1.1";
  if (rawValues(req, "transfer-encoding").length > 0 || rawValues(req, "content-length").some((v) => v.trim() !== "0")) return "a WebSocket handshake has no body";
  const version = rawValues(req, "sec-websocket-version");
  if (version.length !== 1 || version[0]!.trim() !== "13") return "Sec-WebSocket-Version must be 13";
  const key = rawValues(req, "sec-websocket-key");
  if (key.length !== 1 || !/^[A-Za-z0-9+/]{22}==$/.test(key[0]!.trim())) return "Sec-WebSocket-Key must be 16 bytes in base64";
  return null;
}

export interface UpgradeAnswer {
  readonly status: number;
  readonly message: string;
  /** Header lines in order, names as the upstream sent them. */
  readonly headers: [string, string][];
  /** What followed the head: frames after a 101, the body of anything else. */
  readonly rest: Buffer;
}

/**
 * Reads the upstream's answer to a WebSocket handshake. A 101 comes back with the frames that
 * followed it; anything else (401, 404, 426 ...) is a refusal, read whole (up to 1 MiB) with its
 * body, which the agent gets scrubbed (refusalBytes). Parsed like every response (src/net/http1.ts).
 */
export function readHandshakeAnswer(socket: Socket): Promise<UpgradeAnswer | { error: string }> {
  return new Promise((resolve) => {
    let head: ResponseHead | null = null;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: UpgradeAnswer | { error: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ error: "no answer to the WebSocket handshake" }), ANSWER_TIMEOUT_MS);
    const parser = new ResponseParser(
      {
        head: (h) => {
          head = h;
        },
        body: (bytes) => {
          size += bytes.length;
          if (size > MAX_ANSWER_BODY_BYTES) return finish({ error: "the answer to the WebSocket handshake is too large" });
          chunks.push(Buffer.from(bytes));
        },
        end: () => {
          const h = head!;
          finish({ status: h.status, message: h.reason, headers: h.headers, rest: h.status === 101 ? parser.takeRest() : Buffer.concat(chunks) });
        },
      },
      { maxHeadBytes: MAX_ANSWER_HEAD_BYTES },
    );
    parser.expect("GET");
    const onData = (data: Buffer) => {
      const error = parser.feed(data);
      if (error) return finish({ error: error.message });
      if (head?.status === 101) finish({ status: 101, message: head.reason, headers: head.headers, rest: parser.takeRest() });
    };
    const onClose = () => {
      const error = parser.eof();
      finish({ error: error?.message ?? "the upstream closed the connection during the WebSocket handshake" });
    };
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.resume();
  });
}

/** Why a 101 cannot be relayed as the WebSocket the agent asked for, or null (RFC 6455 4.2.2, 9.1). */
export function switchProblem(answer: UpgradeAnswer, key: string): string | null {
  const upgrade = header(answer.headers, "upgrade");
  if (upgrade.length !== 1 || upgrade[0]!.toLowerCase() !== "websocket") return `it switched to ${JSON.stringify(upgrade.join(", ").slice(0, 40))}, not to a WebSocket`;
  if (!header(answer.headers, "connection").some((v) => v.split(",").some((t) => t.trim().toLowerCase() === "upgrade"))) return "its 101 has no Connection: Upgrade";
  const accept = createHash("sha1").update(`${key.trim()}${WS_GUID}`).digest("base64");
  const got = header(answer.headers, "sec-websocket-accept");
  if (got.length !== 1 || got[0] !== accept) return "its Sec-WebSocket-Accept does not match the key";
  // We never offer an extension, so none may be in use: compressed frames could not be checked.
  if (header(answer.headers, "sec-websocket-extensions").length > 0) return "it negotiated an extension that was not offered";
  return null;
}

/** Header lines for the agent, scrubbed: a value replaced, a header whose name holds one dropped. */
function scrubbedLines(headers: readonly [string, string][], patterns: readonly Pattern[]): string[] {
  const lines: string[] = [];
  for (const [name, value] of headers) {
    if (scrubText(name, patterns) !== name) continue;
    lines.push(`${name}: ${scrubText(value, patterns)}`);
  }
  return lines;
}

/** The 101 as the agent gets it: the upstream's headers, scrubbed. */
export function switchHead(answer: UpgradeAnswer, patterns: readonly Pattern[]): string {
  return `HTTP/1.1 101 ${scrubText(answer.message, patterns) || "Switching Protocols"}\r\n${scrubbedLines(answer.headers, patterns).join("\r\n")}\r\n\r\n`;
}

/**
 * A refused handshake as the agent gets it: the body decoded and scrubbed like any response
 * (whole-body.ts: declared content codings undone, every layer its magic bytes reveal scrubbed
 * too), an exact length, and the connection closed.
 */
export function refusalBytes(answer: UpgradeAnswer, patterns: readonly Pattern[]): Buffer | { error: string } {
  const codings = messageCodings(header(answer.headers, "content-encoding"), header(answer.headers, "transfer-encoding"));
  const whole = codings === null ? null : scrubWholeBody(answer.rest, codings, patterns, MAX_ANSWER_BODY_BYTES);
  if (whole === null || "unreadable" in whole) return { error: "the answer to the WebSocket handshake has a body that cannot be scanned" };
  if ("refused" in whole) return { error: `the answer to the WebSocket handshake carries the value of credential ${whole.refused.key} in a spelling that cannot be replaced where it stands` };
  const clean = whole.body;
  const kept = answer.headers.filter(([n]) => !HOP_BY_HOP.has(n.toLowerCase()) && n.toLowerCase() !== "content-encoding");
  const head = `HTTP/1.1 ${answer.status} ${scrubText(answer.message, patterns)}\r\n${[...scrubbedLines(kept, patterns), `Content-Length: ${clean.length}`, "Connection: close"].join("\r\n")}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), clean]);
}
