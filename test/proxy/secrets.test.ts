// The guard's and the scrubber's matching (src/proxy/secrets.ts), fuzzed: random values in random
// encodings inside random text, split at random points across chunks. The guard must find every
// one, the scrubber must leave no raw value behind, and text without a value must pass unchanged.
import { describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { prng } from "../support/random.ts";
import { base32, decodeBody, endsWithPartValue, findSecret, partialSuffix, patternsOf, scrubText, StreamGuard, StreamScrubber } from "../../src/proxy/secrets.ts";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

function randomText(r: () => number, n: number, alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 {}":,.\n-_=&?/+%'): string {
  let out = "";
  for (let i = 0; i < n; i++) out += alphabet[Math.floor(r() * alphabet.length)];
  return out;
}

function randomSecret(r: () => number): string {
  // Real keys: letters, digits, and often _ - + / = (AWS, base64 keys).
  return `${["sk_live_", "ghp_", "xoxb-", "AKIA", ""][Math.floor(r() * 5)]}${randomText(r, 12 + Math.floor(r() * 40), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=")}`;
}

/** The value as an agent might smuggle it: the encoded text it would send. */
function encode(r: () => number, value: string): { form: string; text: string } {
  const bytes = Buffer.from(value);
  const pad = Buffer.from(randomText(r, Math.floor(r() * 7)));
  const tail = Buffer.from(randomText(r, Math.floor(r() * 7)));
  switch (Math.floor(r() * 8)) {
    case 0:
      return { form: "raw", text: value };
    case 1:
      return { form: "base64 inside a longer text", text: Buffer.concat([pad, bytes, tail]).toString("base64") };
    case 2:
      return { form: "base64url inside a longer text", text: Buffer.concat([pad, bytes, tail]).toString("base64url") };
    case 3:
      return { form: "url", text: encodeURIComponent(value) };
    case 4:
      return { form: "form", text: new URLSearchParams({ token: value }).toString() };
    case 5:
      return { form: "hex", text: r() < 0.5 ? bytes.toString("hex") : bytes.toString("hex").toUpperCase() };
    case 6:
      return { form: "json", text: JSON.stringify({ token: value, n: 1 }) };
    default:
      return { form: "json with escaped slashes", text: JSON.stringify({ token: value }).replace(/\//g, "\\/") };
  }
}

function splits(r: () => number, text: string): string[] {
  const parts: string[] = [];
  let at = 0;
  while (at < text.length) {
    const n = 1 + Math.floor(r() * Math.max(1, text.length / 3));
    parts.push(text.slice(at, at + n));
    at += n;
  }
  return parts;
}

describe("one set of forms for both directions (issue 12)", () => {
  const value = "tok_Live/9f8e7d6c5b4a+Z";
  const patterns = patternsOf("K", value);
  const bytes = Buffer.from(value);
  const spellings: [string, string][] = [
    ["one unreserved character percent-encoded", `q=${value.replace("t", "%74")}`],
    ["every character percent-encoded, lower-case hex", [...bytes].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("")],
    ["double percent-encoding", encodeURIComponent(encodeURIComponent(value).replace(/o/g, "%6F"))],
    ["JSON \\u escapes", JSON.stringify({ t: [...value].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`).join("") }).replace(/\\\\/g, "\\")],
    ["JSON \\/ and one \\u escape", JSON.stringify({ t: value }).replace("/", "\\/").replace("L", "\\u004C")],
    ["JavaScript \\x escapes", value.replace(/o/g, "\\x6f")],
    ["upper-case hex", bytes.toString("hex").toUpperCase()],
    ["mixed-case hex", bytes.toString("hex").replace(/[a-f]/g, (c, i: number) => (i % 2 ? c.toUpperCase() : c))],
    ["base32", base32(bytes)],
    ["base32 lower-case inside a longer text", base32(Buffer.concat([Buffer.from("xy"), bytes, Buffer.from("z")])).toLowerCase()],
    ["base64 of user:password (basic auth)", `Basic ${Buffer.from(`someone:${value}`).toString("base64")}`],
    ["upper-cased", value.toUpperCase()],
  ];
  for (const [name, text] of spellings) {
    test(`the guard finds it and scrubbing removes it: ${name}`, () => {
      expect(findSecret(text, patterns)?.key).toBe("K");
      const clean = scrubText(text, patterns);
      expect(clean).toContain("[REDACTED:K]");
      expect(findSecret(clean, patterns)).toBeNull();
    });
  }

  test("a value spelled with many-round escapes, far from other text, is found (decoded windows are wide enough)", () => {
    const spelled = [...value].map((ch) => `\\u0025${ch.charCodeAt(0).toString(16).padStart(2, "0")}`).join("");
    expect(findSecret(`${"x".repeat(5000)}${spelled}${"y".repeat(5000)}`, patterns)?.key).toBe("K");
    const triple = [...value].map((ch) => `%2525${ch.charCodeAt(0).toString(16).padStart(2, "0")}`).join("");
    expect(findSecret(`${"z".repeat(3000)}${triple}`, patterns)?.key).toBe("K");
    expect(scrubText(`a ${triple} b`, patterns)).toBe("a [REDACTED:K] b");
  });

  test("scrubbing replaces an escaped spelling where it stands, leaving the text around it", () => {
    expect(scrubText(`a=1&t=${value.replace("t", "%74")}&b=2`, patterns)).toBe("a=1&t=[REDACTED:K]&b=2");
    expect(scrubText(`{"t":"${value.replace("/", "\\/").replace("L", "\\u004c")}","n":1}`, patterns)).toBe('{"t":"[REDACTED:K]","n":1}');
  });

  test("a stream split inside an escape is held, not passed", () => {
    const text = `x=${value.replace("L", "%4C")}`;
    for (let cut = 1; cut < text.length; cut++) {
      const guard = new StreamGuard(patterns);
      const a = guard.push(Buffer.from(text.slice(0, cut)));
      const b = "hit" in a ? a : guard.push(Buffer.from(text.slice(cut)));
      expect("hit" in b).toBe(true);
      const scrubber = new StreamScrubber(patterns);
      const out = scrubber.push(Buffer.from(text.slice(0, cut))).toString("latin1") + scrubber.push(Buffer.from(text.slice(cut))).toString("latin1") + scrubber.end().toString("latin1");
      expect(out).toBe("x=[REDACTED:K]");
    }
  });

  test("overlapping values at the cut are held back together, however they chain", () => {
    const patterns = [...patternsOf("A", "abcdefgh12345678"), ...patternsOf("B", "12345678zyxwvuts"), ...patternsOf("C", "vutsQQQQQQQQ")];
    const scrubber = new StreamScrubber(patterns);
    const out = scrubber.push(Buffer.from("xx abcdefgh12345678zyxwvutsQQ")).toString("latin1") + scrubber.push(Buffer.from("QQQQQQ end")).toString("latin1") + scrubber.end().toString("latin1");
    expect(out).not.toContain("abcdefgh");
    expect(out).not.toContain("12345678");
    expect(out).toContain("[REDACTED:A]");
  });

  test("a text ending in half a value or more is caught; a short common prefix is not", () => {
    expect(endsWithPartValue(`payload ${value.slice(0, 14)}`, patterns)?.key).toBe("K");
    expect(endsWithPartValue(`payload ${value.slice(0, 4)}`, patterns)).toBeNull();
    expect(endsWithPartValue("plain text", patterns)).toBeNull();
  });

  test("clean text with escapes passes unchanged", () => {
    const text = '{"msg":"line\\none \\u00e9 %41%42 tok_other"}';
    expect(findSecret(text, patterns)).toBeNull();
    expect(scrubText(text, patterns)).toBe(text);
  });
});

describe("patterns", () => {
  test("every form of a value, and nothing for values too short to look for", () => {
    const forms = patternsOf("K", 'ab~~~cd/ef+gh "x"').map((p) => p.form);
    for (const form of ["raw", "base64", "base64url", "hex", "base32"]) expect(forms).toContain(form);
    expect(patternsOf("K", "short")).toEqual([]);
  });

  test("the base64 core is found at each of the three byte alignments", () => {
    const value = "sk_live_0123456789abcdef";
    const patterns = patternsOf("K", value);
    for (const prefix of ["", "a", "ab", "abc"]) {
      expect(findSecret(Buffer.from(`${prefix}${value}xyz`).toString("base64"), patterns)?.key).toBe("K");
      expect(findSecret(Buffer.from(`${prefix}${value}`).toString("base64url"), patterns)?.key).toBe("K");
    }
  });
});

describe(`fuzz (FUZZ_SEED=${SEED})`, () => {
  // 3000 pattern lists each compiled anew: about a second here, more on a loaded CI machine.
  test("the stream guard finds 3000 smuggled values, whatever the encoding and the chunking", () => {
    const r = prng(SEED);
    for (let i = 0; i < 3000; i++) {
      const value = randomSecret(r);
      const { form, text } = encode(r, value);
      const body = `${randomText(r, Math.floor(r() * 200))}${text}${randomText(r, Math.floor(r() * 200))}`;
      const guard = new StreamGuard(patternsOf("SECRET", value));
      let found = false;
      let sent = "";
      for (const part of splits(r, body)) {
        const out = guard.push(Buffer.from(part, "latin1"));
        if ("hit" in out) {
          found = true;
          break;
        }
        sent += out.send.toString("latin1");
      }
      if (!found) throw new Error(`case ${i} (${form}): ${JSON.stringify(value)} not found in ${JSON.stringify(body)}`);
      // What went out before the hit never holds the whole value in any form.
      expect(findSecret(sent, patternsOf("SECRET", value))).toBeNull();
    }
  }, 30_000);

  test("the stream scrubber leaves no raw or JSON-escaped value in 3000 split responses, and streams", () => {
    const r = prng(SEED + 1);
    for (let i = 0; i < 3000; i++) {
      const value = randomSecret(r);
      const patterns = patternsOf("SECRET", value);
      const body = `data: ${randomText(r, Math.floor(r() * 100))}${value}${randomText(r, Math.floor(r() * 100))}\n\ndata: ${JSON.stringify({ again: value })}\n\n`;
      const scrubber = new StreamScrubber(patterns);
      let out = "";
      let held = 0;
      for (const part of splits(r, body)) {
        const chunk = scrubber.push(Buffer.from(part, "latin1")).toString("latin1");
        out += chunk;
        held = Math.max(held, partialSuffix(out + "", patterns));
      }
      out += scrubber.end().toString("latin1");
      if (out.includes(value) || out.includes(JSON.stringify(value).slice(1, -1))) throw new Error(`case ${i}: ${JSON.stringify(value)} left in ${JSON.stringify(out)}`);
      expect(out.split("[REDACTED:SECRET]").length - 1).toBeGreaterThanOrEqual(2);
    }
  }, 30_000);

  test("text without a value passes the guard and the scrubber unchanged", () => {
    const r = prng(SEED + 2);
    const value = randomSecret(r);
    const patterns = patternsOf("SECRET", value);
    for (let i = 0; i < 1000; i++) {
      const text = randomText(r, 1 + Math.floor(r() * 500));
      if (text.includes(value)) continue;
      expect(findSecret(text, patterns)).toBeNull();
      const scrubber = new StreamScrubber(patterns);
      let out = "";
      for (const part of splits(r, text)) out += scrubber.push(Buffer.from(part, "latin1")).toString("latin1");
      out += scrubber.end().toString("latin1");
      expect(out).toBe(text);
    }
  });
});

describe("streaming", () => {
  test("a chunk that does not end in the start of a value is passed whole: events are not delayed", () => {
    const patterns = patternsOf("K", "ghp_abcdefghijklmnop");
    const scrubber = new StreamScrubber(patterns);
    expect(scrubber.push(Buffer.from("data: hello\n\n")).toString()).toBe("data: hello\n\n");
    // "gh" could start the value: held until the next chunk says otherwise.
    expect(scrubber.push(Buffer.from("data: gh")).toString()).toBe("data: ");
    expect(scrubber.push(Buffer.from("ost\n\n")).toString()).toBe("ghost\n\n");
    expect(scrubber.push(Buffer.from("x ghp_abcdefgh")).toString()).toBe("x ");
    // " y" may start another form of the value (its base64 begins with "y"): held until the end.
    expect(scrubber.push(Buffer.from("ijklmnop y")).toString() + scrubber.end().toString()).toBe("[REDACTED:K] y");
  });

  test("compressed bodies are decoded for scanning; unknown codings are not", () => {
    const body = gzipSync(Buffer.from("token=ghp_abcdefghijklmnop"));
    const decoded = decodeBody(body, "gzip");
    expect(scrubText(decoded!.toString("latin1"), patternsOf("K", "ghp_abcdefghijklmnop"))).toBe("token=[REDACTED:K]");
    expect(decodeBody(body, "zstd")).toBeNull();
    expect(decodeBody(Buffer.alloc(0), "gzip")!.length).toBe(0);
    expect(decodeBody(Buffer.from("not gzip"), "gzip")).toBeNull();
  });
});
