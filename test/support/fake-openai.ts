// A minimal fake of OpenAI's Responses API, enough for the real `codex exec` to finish a turn, as a
// handler for startUpstream() (set `upstream.handler = fake.handler`). It answers both transports
// codex uses:
//   - WebSocket: `GET /v1/responses` with `Upgrade: websocket`; each `response.create` text frame
//     is answered with the stream's events as text frames (codex's default for the OpenAI provider);
//   - HTTPS + SSE: `POST /v1/responses` with `stream: true`, answered with `text/event-stream`
//     (custom providers, and codex's fallback when the WebSocket upgrade is refused).
// Every turn is recorded with the Authorization it arrived with, so a test can see which key
// actually reached "OpenAI". Anything else falls through to the upstream's default echo.
import { createHash } from "node:crypto";
import { type IncomingMessage, type ServerResponse } from "node:http";
import { type Socket } from "node:net";
import { type Handler } from "./upstream.ts";

export interface FakeTurn {
  readonly transport: "websocket" | "sse";
  /** The Authorization header of the HTTP request (for WebSocket: of the upgrade request). */
  readonly authorization: string | undefined;
  /** The request as codex sent it: the POST body, or the WebSocket text message. */
  readonly raw: string;
  /** `raw` parsed, or null when it was not JSON. */
  readonly body: Record<string, unknown> | null;
}

export interface FakeOpenAI {
  readonly handler: Handler;
  readonly turns: FakeTurn[];
  /** Upgrade requests that were refused (when `websocket` is false). */
  readonly refusedUpgrades: number;
}

export interface FakeOpenAIOptions {
  /** The assistant's reply, streamed as one output_text message. */
  readonly reply: string;
  /** Accept WebSocket upgrades (default true); when false they get 426 and codex falls back to SSE. */
  readonly websocket?: boolean;
}

const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The Responses API events of one completed turn, in the order the real API sends them. */
export function responseEvents(reply: string, options: { generate?: boolean; n?: number } = {}): Record<string, unknown>[] {
  const id = `resp_fake_${options.n ?? 1}`;
  const messageId = `msg_fake_${options.n ?? 1}`;
  const usage = {
    input_tokens: 12,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: options.generate === false ? 0 : 3,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: options.generate === false ? 12 : 15,
  };
  const created = { type: "response.created", response: { id, object: "response", status: "in_progress", output: [] } };
  const completed = (output: unknown[]) => ({ type: "response.completed", response: { id, object: "response", status: "completed", output, usage } });
  // A prewarm request (`generate: false`) only opens the response: no output.
  if (options.generate === false) return [created, completed([])];
  const message = { type: "message", id: messageId, role: "assistant", status: "completed", content: [{ type: "output_text", text: reply, annotations: [] }] };
  return [
    created,
    { type: "response.output_item.added", output_index: 0, item: { ...message, status: "in_progress", content: [] } },
    { type: "response.content_part.added", item_id: messageId, output_index: 0, content_index: 0, part: { type: "output_text", text: "", annotations: [] } },
    { type: "response.output_text.delta", item_id: messageId, output_index: 0, content_index: 0, delta: reply },
    { type: "response.output_text.done", item_id: messageId, output_index: 0, content_index: 0, text: reply },
    { type: "response.content_part.done", item_id: messageId, output_index: 0, content_index: 0, part: { type: "output_text", text: reply, annotations: [] } },
    { type: "response.output_item.done", output_index: 0, item: message },
    completed([message]),
  ];
}

function parse(raw: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(raw);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** One unmasked server frame (RFC 6455 5.2). */
function frame(opcode: number, payload: Buffer): Buffer {
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([0x80 | opcode, payload.length]);
  } else if (payload.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([header, payload]);
}

/** Reads client frames from `socket` and calls `onMessage` with each complete text message. */
function serveWebSocket(socket: Socket, onMessage: (text: string) => void): void {
  let pending = Buffer.alloc(0);
  let message: Buffer[] = [];
  socket.on("error", () => socket.destroy());
  socket.on("data", (data: Buffer) => {
    pending = Buffer.concat([pending, data]);
    for (;;) {
      if (pending.length < 2) return;
      const fin = (pending[0]! & 0x80) !== 0;
      const opcode = pending[0]! & 0x0f;
      const masked = (pending[1]! & 0x80) !== 0;
      let length = pending[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (pending.length < 4) return;
        length = pending.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (pending.length < 10) return;
        length = Number(pending.readBigUInt64BE(2));
        offset = 10;
      }
      const mask = masked ? pending.subarray(offset, offset + 4) : null;
      if (masked) offset += 4;
      if (pending.length < offset + length) return;
      const payload = Buffer.from(pending.subarray(offset, offset + length));
      pending = pending.subarray(offset + length);
      if (mask) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
      if (opcode === 0x8) {
        socket.end(frame(0x8, payload.subarray(0, 2)));
        return;
      }
      if (opcode === 0x9) {
        socket.write(frame(0xa, payload));
        continue;
      }
      if (opcode === 0xa) continue;
      if (opcode === 0x1 || opcode === 0x0) {
        message.push(payload);
        if (fin) {
          const text = Buffer.concat(message).toString("utf8");
          message = [];
          onMessage(text);
        }
      }
    }
  });
}

export function fakeOpenAI(options: FakeOpenAIOptions): FakeOpenAI {
  const turns: FakeTurn[] = [];
  let refusedUpgrades = 0;
  let n = 0;
  const acceptWebSocket = options.websocket ?? true;

  const handler: Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/v1/responses") return false;
    const authorization = req.headers.authorization;

    if (req.method === "GET" && /websocket/i.test(String(req.headers.upgrade ?? ""))) {
      if (!acceptWebSocket) {
        refusedUpgrades++;
        const reply = JSON.stringify({ error: { message: "WebSocket transport is not available here", type: "invalid_request_error" } });
        res.writeHead(426, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) });
        res.end(reply);
        return true;
      }
      // The upstream's HTTP server has no upgrade hook: take the socket over and speak RFC 6455.
      const socket = req.socket;
      const accept = createHash("sha1")
        .update(`${String(req.headers["sec-websocket-key"])}${WEBSOCKET_GUID}`)
        .digest("base64");
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      serveWebSocket(socket, (text) => {
        const parsed = parse(text);
        turns.push({ transport: "websocket", authorization, raw: text, body: parsed });
        if (parsed?.type !== "response.create") return;
        n++;
        for (const event of responseEvents(options.reply, { generate: parsed.generate !== false, n })) {
          socket.write(frame(0x1, Buffer.from(JSON.stringify(event))));
        }
      });
      return true;
    }

    if (req.method === "POST") {
      const raw = body.toString("utf8");
      const parsed = parse(raw);
      turns.push({ transport: "sse", authorization, raw, body: parsed });
      n++;
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-request-id": `req_fake_${n}` });
      for (const event of responseEvents(options.reply, { n })) res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`);
      res.end();
      return true;
    }
    return false;
  };

  return {
    handler,
    turns,
    get refusedUpgrades() {
      return refusedUpgrades;
    },
  };
}
