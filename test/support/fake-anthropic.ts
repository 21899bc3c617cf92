// A minimal fake of Anthropic's Messages API, enough for the real `claude -p` to finish a turn, as
// a handler for startUpstream() (`upstream.handler = fake.handler`). `POST /v1/messages` with
// `stream: true` is answered as the real API streams (text/event-stream: message_start,
// content_block_start, ping, content_block_delta, content_block_stop, message_delta,
// message_stop, each `event:` + `data:`); without it, one JSON message. count_tokens gets a count;
// anything else under /v1/ or /api/ an empty JSON object. Every Messages request is recorded with
// the x-api-key and Authorization it arrived with.
import { type IncomingMessage, type ServerResponse } from "node:http";
import { type Handler } from "./upstream.ts";

export interface FakeMessage {
  readonly apiKey: string | undefined;
  readonly authorization: string | undefined;
  readonly stream: boolean;
  /** The request body as sent. */
  readonly raw: string;
}

export interface FakeAnthropic {
  readonly handler: Handler;
  readonly messages: FakeMessage[];
  /** Paths of every request, in order. */
  readonly paths: string[];
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "request-id": "req_fake" });
  res.end(text);
}

export function fakeAnthropic(options: { reply: string }): FakeAnthropic {
  const messages: FakeMessage[] = [];
  const paths: string[] = [];
  let n = 0;
  const handler: Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const url = new URL(req.url ?? "/", "https://api.anthropic.com");
    paths.push(url.pathname);
    if (req.method === "POST" && url.pathname === "/v1/messages/count_tokens") {
      json(res, 200, { input_tokens: 12 });
      return true;
    }
    if (req.method !== "POST" || url.pathname !== "/v1/messages") {
      json(res, 200, {});
      return true;
    }
    let parsed: { model?: string; stream?: boolean } = {};
    try {
      parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
    } catch {
      json(res, 400, { type: "error", error: { type: "invalid_request_error", message: "body is not JSON" } });
      return true;
    }
    const stream = parsed.stream === true;
    messages.push({ apiKey: req.headers["x-api-key"] as string | undefined, authorization: req.headers.authorization, stream, raw: body.toString("utf8") });
    const id = `msg_fake_${++n}`;
    const model = parsed.model ?? "claude-sonnet-4-5";
    const usage = { input_tokens: 12, output_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
    if (!stream) {
      json(res, 200, { id, type: "message", role: "assistant", model, content: [{ type: "text", text: options.reply }], stop_reason: "end_turn", stop_sequence: null, usage });
      return true;
    }
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "request-id": "req_fake" });
    const events: [string, unknown][] = [
      [
        "message_start",
        { type: "message_start", message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } },
      ],
      ["content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }],
      ["ping", { type: "ping" }],
      ["content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: options.reply } }],
      ["content_block_stop", { type: "content_block_stop", index: 0 }],
      ["message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 5 } }],
      ["message_stop", { type: "message_stop" }],
    ];
    // One write per event, as the API flushes them, so a client's SSE parser sees real chunking.
    let i = 0;
    const next = () => {
      if (i === events.length) return res.end();
      const [event, data] = events[i++]!;
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      setTimeout(next, 5);
    };
    next();
    return true;
  };
  return { handler, messages, paths };
}
