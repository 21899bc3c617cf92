// Ranged requests under scrubbing, without sockets: the step that widens one range (and drops the
// rest), and the length-keeping mask the ranged part is scrubbed with (secrets.ts).
import { describe, expect, test } from "bun:test";
import { makeFlow } from "../../src/proxy/flow.ts";
import { longestSpelling, maskFor, maskText, patternsOf, StreamScrubber } from "../../src/proxy/secrets.ts";
import { type StepContext } from "../../src/proxy/step-context.ts";
import { planRanges } from "../../src/proxy/steps/ranges.ts";

const VALUE = "sk_live_4f9QpZ2mXw7Lr3Tn8Kd1Vb6Y";
const PATTERNS = patternsOf("API_KEY", VALUE);
const MARGIN = longestSpelling(PATTERNS);

function flowWith(headers: Record<string, string | string[]>, method = "GET", scrub = true) {
  const flow = makeFlow({ via: "tunnel", host: "api.example.test", port: 443, method, path: "/f", headers: { ...headers }, credential: undefined });
  if (scrub) flow.scrubBody = () => PATTERNS;
  planRanges(flow, {} as StepContext);
  return flow;
}

describe("planRanges", () => {
  test("one range goes upstream widened by the longest spelling of a value on each side, with its If-Range", () => {
    expect(MARGIN).toBeGreaterThanOrEqual(2 * VALUE.length);
    const flow = flowWith({ range: "bytes=100000-199999", "if-range": '"e1"' });
    expect(flow.headers.range).toBe(`bytes=${100_000 - MARGIN}-${199_999 + MARGIN}`);
    expect(flow.headers["if-range"]).toBe('"e1"');
    expect(flow.range).toEqual({ first: 100_000, last: 199_999, margin: MARGIN });
    expect(flowWith({ range: "bytes=10-" }).headers.range).toBe("bytes=0-");
    expect(flowWith({ range: "Bytes = 10 - 20" }).range).toEqual({ first: 10, last: 20, margin: MARGIN });
  });

  test("several ranges, a suffix range, a HEAD, two Range headers, a Range that does not parse: not passed on", () => {
    for (const range of ["bytes=-5", "bytes=0-1,5-6", "bytes=9-3", "bytes=1e3-", `bytes=${"1".repeat(16)}-`, "items=0-5", "bytes=0-5;x"]) {
      const flow = flowWith({ range, "if-range": '"e1"' });
      expect([flow.headers.range, flow.headers["if-range"], flow.range], range).toEqual([undefined, undefined, undefined]);
    }
    expect(flowWith({ range: "bytes=0-5" }, "HEAD").headers.range).toBeUndefined();
    expect(flowWith({ range: ["bytes=0-5", "bytes=6-9"] }).headers.range).toBeUndefined();
    expect(flowWith({ "if-range": '"e1"' }).headers["if-range"]).toBeUndefined();
  });

  test("without scrubbing, Range and If-Range pass as sent", () => {
    const flow = flowWith({ range: "bytes=-5", "if-range": '"e1"' }, "GET", false);
    expect([flow.headers.range, flow.headers["if-range"], flow.range]).toEqual(["bytes=-5", '"e1"', undefined]);
  });
});

describe("masking keeps every offset", () => {
  test("the marker padded with * or cut to the value's length", () => {
    expect(maskFor("API_KEY", 20)).toBe("[REDACTED:API_KEY]**");
    expect(maskFor("API_KEY", 8)).toBe("[REDACTE");
    const text = `a ${VALUE} b ${Buffer.from(VALUE).toString("hex")} c ${encodeURIComponent(VALUE).replace(/_/g, "%5F")} d`;
    const masked = maskText(text, PATTERNS);
    expect(masked.length).toBe(text.length);
    expect(masked).not.toContain(VALUE);
    expect(masked.startsWith(`a ${maskFor("API_KEY", VALUE.length)} b `)).toBe(true);
  });

  test("the stream scrubber in masking mode gives the same bytes as masking the whole, however the body is cut", () => {
    const filler = (n: number) => "lorem ipsum dolor sit amet, ".repeat(n);
    const body = Buffer.from(
      `${filler(50)}${VALUE}${filler(3)}"${[...VALUE].map((c) => `\\u00${c.charCodeAt(0).toString(16)}`).join("")}"${filler(40)}${Buffer.from(VALUE).toString("hex")}${filler(2)}`,
      "latin1",
    );
    const whole = maskText(body.toString("latin1"), PATTERNS);
    for (const size of [1, 3, 7, 64, 1000]) {
      const scrubber = new StreamScrubber(PATTERNS, true);
      const out: Buffer[] = [];
      for (let at = 0; at < body.length; at += size) out.push(...scrubber.pushPieces(body.subarray(at, at + size)));
      out.push(scrubber.end());
      const joined = Buffer.concat(out);
      expect(joined.length, `chunks of ${size}`).toBe(body.length);
      expect(joined.toString("latin1"), `chunks of ${size}`).toBe(whole);
    }
    expect(whole).not.toContain(VALUE);
  });
});
