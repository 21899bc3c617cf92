// Inputs for the parser's fuzz tests: small valid messages, and mutations of them that insert the
// bytes framing hinges on (CR, LF, SP, HTAB, NUL, ":", ",", ";", hex digits, a second framing header).
export const REQUEST_CORPUS = [
  "POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4;e=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-T: t\r\n\r\n",
  "PUT /two HTTP/1.1\r\nHost: y\r\nContent-Length: 10\r\nConnection: keep-alive\r\n\r\n0123456789",
  "GET /three HTTP/1.1\r\nHost: z\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
  "GET / HTTP/1.0\r\n\r\n",
];
export const RESPONSE_CORPUS = [
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
  "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody",
  "HTTP/1.1 204 No Content\r\nX: y\r\n\r\n",
  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframes",
];
const NOISE = ["\r", "\n", "\r\n", " ", "\t", "\x00", ":", ",", ";", "0", "f", "x", "-", "\x7f", "\xff", "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n"];

export function mutate(r: () => number, text: string): string {
  let out = text;
  for (let n = 1 + Math.floor(r() * 3); n > 0; n--) {
    const at = Math.floor(r() * (out.length + 1));
    const kind = Math.floor(r() * 3);
    if (kind === 0) out = out.slice(0, at) + NOISE[Math.floor(r() * NOISE.length)] + out.slice(at);
    else if (kind === 1) out = out.slice(0, at) + out.slice(at + 1 + Math.floor(r() * 3));
    else out = out.slice(0, at) + String.fromCharCode(Math.floor(r() * 256)) + out.slice(at + 1);
  }
  return out;
}

export function randomSplits(r: () => number, bytes: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + Math.floor(r() * 12);
    parts.push(bytes.subarray(at, at + n));
    at += n;
  }
  return parts;
}
