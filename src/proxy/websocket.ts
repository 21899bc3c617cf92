// WebSocket framing (RFC 6455 section 5), bytes only: a parser that turns one direction's bytes into
// whole messages and control frames, and a serializer. No policy here (ws-policy.ts decides, and
// ws-relay.ts moves bytes). Strict: no extension is ever negotiated through the proxy, so a reserved
// bit is an error; every cost a peer can choose (a 64-bit length, a fragmented message) is capped
// before it is buffered. A violation ends with the close code RFC 6455 section 7.4.1 names.
import { randomFillSync } from "node:crypto";

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export const CLOSE_CODE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  invalidData: 1007,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
} as const;

/** A control frame's payload is at most 125 bytes (5.5). */
export const MAX_CONTROL_PAYLOAD = 125;
/** A whole message (all its fragments) is at most this by default: larger ones close with 1009. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** A complete message (fragments joined, unmasked) or a control frame, as the peer meant it. */
export interface WsMessage {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** Why a stream of frames was refused: the close code to send and a short reason. */
export interface WsFailure {
  readonly code: number;
  readonly reason: string;
}

export function isControl(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

const KNOWN_OPCODES = new Set<number>(Object.values(OPCODE));
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export function isValidUtf8(bytes: Buffer): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Close codes a peer may send (7.4.1, 7.4.2 and IANA's registry): others are a protocol error. */
function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

type State = "head" | "length16" | "length64" | "mask" | "payload";

/**
 * One direction of a WebSocket. `push` takes bytes as they arrive and returns the messages they
 * completed; a failure is final (the connection must close with its code) and nothing after it is
 * parsed. Frames from a client must be masked and frames from a server must not be (5.1).
 */
export class FrameParser {
  private state: State = "head";
  private buffer: Buffer = Buffer.alloc(0);
  private failure: WsFailure | null = null;
  // The frame being read.
  private fin = false;
  private opcode = 0;
  private isMasked = false;
  private length = 0;
  private mask: Buffer = Buffer.alloc(4);
  private read = 0;
  private controlChunks: Buffer[] = [];
  // The data message being assembled from fragments (opcode 0 when none).
  private messageOpcode = 0;
  private messageChunks: Buffer[] = [];
  private messageBytes = 0;

  constructor(private readonly options: { readonly fromClient: boolean; readonly maxMessageBytes?: number }) {}

  get failed(): WsFailure | null {
    return this.failure;
  }

  push(bytes: Buffer): { messages: WsMessage[]; failure: WsFailure | null } {
    const messages: WsMessage[] = [];
    if (this.failure) return { messages, failure: this.failure };
    this.buffer = this.buffer.length === 0 ? bytes : Buffer.concat([this.buffer, bytes]);
    while (!this.failure && this.step(messages));
    return { messages, failure: this.failure };
  }

  private fail(code: number, reason: string): boolean {
    this.failure = { code, reason };
    this.buffer = Buffer.alloc(0);
    this.messageChunks = [];
    return false;
  }

  /** One state transition; false when more bytes are needed. */
  private step(out: WsMessage[]): boolean {
    switch (this.state) {
      case "head": {
        if (this.buffer.length < 2) return false;
        const b0 = this.buffer[0]!;
        const b1 = this.buffer[1]!;
        this.buffer = this.buffer.subarray(2);
        this.fin = (b0 & 0x80) !== 0;
        this.opcode = b0 & 0x0f;
        this.isMasked = (b1 & 0x80) !== 0;
        const length7 = b1 & 0x7f;
        // No extension is negotiated through the proxy, so no reserved bit may be set (5.2).
        if ((b0 & 0x70) !== 0) return this.fail(CLOSE_CODE.protocolError, "reserved bits set");
        if (!KNOWN_OPCODES.has(this.opcode)) return this.fail(CLOSE_CODE.protocolError, `reserved opcode ${this.opcode}`);
        if (this.isMasked !== this.options.fromClient) return this.fail(CLOSE_CODE.protocolError, this.options.fromClient ? "unmasked frame from the client" : "masked frame from the server");
        if (isControl(this.opcode)) {
          if (!this.fin) return this.fail(CLOSE_CODE.protocolError, "fragmented control frame");
          if (length7 > MAX_CONTROL_PAYLOAD) return this.fail(CLOSE_CODE.protocolError, "control frame longer than 125 bytes");
        } else if (this.opcode === OPCODE.continuation) {
          if (this.messageOpcode === 0) return this.fail(CLOSE_CODE.protocolError, "continuation frame without a message");
        } else if (this.messageOpcode !== 0) {
          return this.fail(CLOSE_CODE.protocolError, "new message before the previous one ended");
        }
        if (length7 === 126) this.state = "length16";
        else if (length7 === 127) this.state = "length64";
        else return this.startPayload(length7);
        return true;
      }
      case "length16": {
        if (this.buffer.length < 2) return false;
        const length = this.buffer.readUInt16BE(0);
        this.buffer = this.buffer.subarray(2);
        return this.startPayload(length);
      }
      case "length64": {
        if (this.buffer.length < 8) return false;
        const length = this.buffer.readBigUInt64BE(0);
        this.buffer = this.buffer.subarray(8);
        if (length >= 1n << 63n) return this.fail(CLOSE_CODE.protocolError, "frame length with the most significant bit set");
        // Compared as a bigint: a length past 2^53 must not wrap into a small number.
        if (length > BigInt(this.maxMessageBytes)) return this.fail(CLOSE_CODE.tooBig, "message too big");
        return this.startPayload(Number(length));
      }
      case "mask": {
        if (this.buffer.length < 4) return false;
        this.mask = Buffer.from(this.buffer.subarray(0, 4));
        this.buffer = this.buffer.subarray(4);
        this.state = "payload";
        return true;
      }
      case "payload": {
        if (this.read < this.length) {
          if (this.buffer.length === 0) return false;
          const take = Math.min(this.length - this.read, this.buffer.length);
          const chunk = Buffer.from(this.buffer.subarray(0, take));
          this.buffer = this.buffer.subarray(take);
          if (this.isMasked) unmask(chunk, this.mask, this.read);
          this.read += take;
          if (isControl(this.opcode)) this.controlChunks.push(chunk);
          else this.messageChunks.push(chunk);
        }
        if (this.read === this.length) return this.endFrame(out);
        return true;
      }
    }
  }

  private get maxMessageBytes(): number {
    return this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  private startPayload(length: number): boolean {
    if (!isControl(this.opcode)) {
      // The cap is on the whole message, checked before any of this frame is buffered.
      if (this.messageBytes + length > this.maxMessageBytes) return this.fail(CLOSE_CODE.tooBig, "message too big");
      this.messageBytes += length;
      if (this.opcode !== OPCODE.continuation) this.messageOpcode = this.opcode;
    }
    this.length = length;
    this.read = 0;
    this.state = this.isMasked ? "mask" : "payload";
    return true;
  }

  private endFrame(out: WsMessage[]): boolean {
    this.state = "head";
    if (isControl(this.opcode)) {
      const payload = Buffer.concat(this.controlChunks);
      this.controlChunks = [];
      if (this.opcode === OPCODE.close) {
        const invalid = closeProblem(payload);
        if (invalid) return this.fail(invalid.code, invalid.reason);
      }
      out.push({ opcode: this.opcode, payload });
      return true;
    }
    if (!this.fin) return true;
    const payload = this.messageChunks.length === 1 ? this.messageChunks[0]! : Buffer.concat(this.messageChunks);
    const opcode = this.messageOpcode;
    this.messageChunks = [];
    this.messageBytes = 0;
    this.messageOpcode = 0;
    if (opcode === OPCODE.text && !isValidUtf8(payload)) return this.fail(CLOSE_CODE.invalidData, "text message is not valid UTF-8");
    out.push({ opcode, payload });
    return true;
  }
}

/** Why a close frame's payload is invalid (5.5.1), or null. */
function closeProblem(payload: Buffer): WsFailure | null {
  if (payload.length === 0) return null;
  if (payload.length === 1) return { code: CLOSE_CODE.protocolError, reason: "close frame with a one-byte payload" };
  if (!isValidCloseCode(payload.readUInt16BE(0))) return { code: CLOSE_CODE.protocolError, reason: `invalid close code ${payload.readUInt16BE(0)}` };
  if (!isValidUtf8(payload.subarray(2))) return { code: CLOSE_CODE.invalidData, reason: "close reason is not valid UTF-8" };
  return null;
}

/** XORs `data` in place with the masking key, `offset` bytes into the frame's payload (5.3). */
export function unmask(data: Buffer, key: Buffer, offset = 0): void {
  let i = 0;
  // Byte by byte up to a 4-byte boundary in memory, then a word at a time (about 4x faster).
  while (i < data.length && ((data.byteOffset + i) & 3) !== 0) data[i]! ^= key[(offset + i++) & 3]!;
  const words = (data.length - i) >>> 2;
  if (words > 0) {
    const rotated = new Uint8Array([key[(offset + i) & 3]!, key[(offset + i + 1) & 3]!, key[(offset + i + 2) & 3]!, key[(offset + i + 3) & 3]!]);
    const word = new Int32Array(rotated.buffer)[0]!;
    const view = new Int32Array(data.buffer, data.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w]! ^= word;
    i += words * 4;
  }
  for (; i < data.length; i++) data[i]! ^= key[(offset + i) & 3]!;
}

/**
 * One frame. Toward a server a frame must be masked with a fresh, unpredictable key (5.3, so a
 * hostile page cannot choose the bytes an intermediary sees); toward a client it must not be.
 */
export function encodeFrame(opcode: number, payload: Buffer, options: { readonly masked: boolean; readonly fin?: boolean }): Buffer {
  const fin = options.fin ?? true;
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const maskBytes = options.masked ? 4 : 0;
  const frame = Buffer.allocUnsafe(2 + lengthBytes + maskBytes + length);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  const maskBit = options.masked ? 0x80 : 0;
  if (lengthBytes === 0) frame[1] = maskBit | length;
  else if (lengthBytes === 2) {
    frame[1] = maskBit | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = maskBit | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const at = 2 + lengthBytes;
  payload.copy(frame, at + maskBytes);
  if (options.masked) {
    const key = frame.subarray(at, at + 4);
    randomFillSync(key);
    unmask(frame.subarray(at + 4), key);
  }
  return frame;
}

/** A close frame's payload: the code, then a UTF-8 reason cut to fit in 125 bytes. */
export function closePayload(code: number, reason = ""): Buffer {
  let text = Buffer.from(reason, "utf8");
  if (text.length > MAX_CONTROL_PAYLOAD - 2) text = Buffer.from(new TextDecoder().decode(text.subarray(0, MAX_CONTROL_PAYLOAD - 2)).replace(/\uFFFD+$/, ""), "utf8");
  const out = Buffer.alloc(2 + text.length);
  out.writeUInt16BE(code, 0);
  text.copy(out, 2);
  return out;
}

/** The code and reason of a close frame's payload (already checked by the parser). */
export function parseClose(payload: Buffer): { code: number | null; reason: string } {
  if (payload.length < 2) return { code: null, reason: "" };
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString("utf8") };
}
