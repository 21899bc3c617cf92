// An aws-chunked body streamed under the guard (src/proxy/aws-chunked-stream.ts): the framed bytes
// go on unchanged, however they are cut; a value in the payload is found even when the framing
// splits it, and none of it was sent; framing that is not aws-chunked stops the body.
import { describe, expect, test } from "bun:test";
import { requestCodings } from "../../src/net/codings.ts";
import { AwsChunkedStream } from "../../src/proxy/aws-chunked-stream.ts";
import { longestSpelling, patternsOf, StreamGuard } from "../../src/proxy/secrets.ts";

const VALUE = "canary-VALUE-0123456789abcdefXYZ";
const patterns = patternsOf("KEY", VALUE);

function framed(payloads: readonly Buffer[], trailer = "x-amz-checksum-crc32:AAAAAA==\r\n"): Buffer {
  const parts = payloads.map((p) => Buffer.concat([Buffer.from(`${p.length.toString(16)};chunk-signature=${"0".repeat(64)}\r\n`), p, Buffer.from("\r\n")]));
  return Buffer.concat([...parts, Buffer.from(`0;chunk-signature=${"0".repeat(64)}\r\n${trailer}\r\n`)]);
}

function run(body: Buffer, cut: number): { sent: Buffer; result: string } {
  const stream = new AwsChunkedStream(new StreamGuard(patterns, longestSpelling(patterns)), patterns);
  const sent: Buffer[] = [];
  for (let at = 0; at < body.length; at += cut) {
    const r = stream.push(body.subarray(at, at + cut));
    if ("hit" in r) return { sent: Buffer.concat(sent), result: `hit ${r.hit.key}` };
    if ("refused" in r) return { sent: Buffer.concat(sent), result: `refused ${r.refused.message}` };
    sent.push(r.send);
  }
  const r = stream.end();
  if ("hit" in r) return { sent: Buffer.concat(sent), result: `hit ${r.hit.key}` };
  if ("refused" in r) return { sent: Buffer.concat(sent), result: `refused ${r.refused.message}` };
  sent.push(r.send);
  return { sent: Buffer.concat(sent), result: "ok" };
}

describe("AwsChunkedStream", () => {
  test("the framed bytes go on unchanged, however they are cut", () => {
    const body = framed([Buffer.alloc(70_000, "a"), Buffer.alloc(3, "b"), Buffer.alloc(65_536, "c")]);
    for (const cut of [7, 100, 4096, 65_536, body.length]) {
      const { sent, result } = run(body, cut);
      expect(result).toBe("ok");
      expect(sent.equals(body)).toBe(true);
    }
    const small = framed([Buffer.from("hello"), Buffer.from(" world")]);
    expect(run(small, 1).sent.equals(small)).toBe(true);
  });

  test("a value split by the framing is found, and none of it was sent", () => {
    const half = VALUE.length / 2;
    const body = framed([Buffer.concat([Buffer.alloc(50_000, "x"), Buffer.from(VALUE.slice(0, half))]), Buffer.from(VALUE.slice(half)), Buffer.alloc(10, "y")]);
    for (const cut of [13, 4096, body.length]) {
      const { sent, result } = run(body, cut);
      expect(result).toBe("hit KEY");
      expect(sent.toString("latin1")).not.toContain(VALUE.slice(0, 8));
    }
  });

  test("framing that is not aws-chunked, a short body, bytes after the end: refused", () => {
    expect(run(Buffer.from("zz;chunk-signature=00\r\nabc"), 5).result).toStartWith("refused the aws-chunked request body is malformed (a bad chunk size line)");
    expect(run(Buffer.from("5\r\nabcdefgh\r\n"), 3).result).toContain("a chunk is longer than its size");
    expect(run(framed([Buffer.from("abc")]).subarray(0, 20), 4).result).toContain("ended before its last chunk");
    expect(run(Buffer.concat([framed([Buffer.from("abc")]), Buffer.from("extra")]), 1000).result).toContain("bytes after the last chunk");
  });
});

describe("requestCodings", () => {
  test("aws-chunked is undone first wherever S3 lists it, and a STREAMING- payload is framed whatever Content-Encoding says", () => {
    expect(requestCodings("aws-chunked", undefined, true)).toEqual({ all: ["aws-chunked"], content: 1 });
    expect(requestCodings("aws-chunked,gzip", undefined, true)).toEqual({ all: ["gzip", "aws-chunked"], content: 2 });
    expect(requestCodings(undefined, undefined, true)).toEqual({ all: ["aws-chunked"], content: 1 });
    expect(requestCodings("gzip", "gzip, chunked", false)).toEqual({ all: ["gzip", "gzip"], content: 1 });
    expect(requestCodings("compress", undefined, false)).toBeNull();
  });
});
