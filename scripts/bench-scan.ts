// The response scrubber's scan alone (src/proxy/search.ts under src/proxy/secrets.ts), in process:
// ten credentials like bench-proxy.ts's (one sk-bench-UUID, nine of 20–60 characters with
// well-known prefixes), every form of each, over 64 MiB of three bodies: bench-proxy's download
// (alphanumeric, the worst case: every 3-byte block of it begins some base64/hex/base32 form),
// random base64 and English-like text. In MiB/s of CPU time, best of trials. Where the tree has
// them (secret-compiled.ts), also the searches the streams use alone: SampledSearch over the
// scrubber's anchors (heads, tails) and over the guard's whole values.
// Usage: bun scripts/bench-scan.ts [MiB] [trials]
import { MultiSearch } from "../src/proxy/search.ts";
import { longestSpelling, type Pattern, patternsOf, StreamGuard, StreamScrubber } from "../src/proxy/secrets.ts";
import { prng } from "../test/support/random.ts";

const MiB = 1024 * 1024;
const SIZE = Number(process.argv[2] ?? 64) * MiB;
const TRIALS = Number(process.argv[3] ?? 3);

function credentials(): [string, string][] {
  const r = prng(14);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const prefixes = ["ghp_", "xoxb-", "AKIA", "glpat-", "sk_live_", "pk-", "key-", "tok_", "rk_"];
  const out: [string, string][] = [["BENCH_TOKEN", "sk-bench-3f0c1a7e-9b2d-4c55-8e61-0d2b7a9c4f13"]];
  prefixes.forEach((prefix, i) => {
    const length = 20 + i * 5;
    const value = prefix + Array.from({ length: length - prefix.length }, () => alphabet[Math.floor(r() * alphabet.length)]).join("");
    out.push([`BENCH_EXTRA_${i + 1}`, value]);
  });
  return out;
}

const patterns: Pattern[] = credentials()
  .flatMap(([key, value]) => patternsOf(key, value))
  .sort((a, b) => b.bytes.length - a.bytes.length);

/** A 64 KiB chunk repeated, as the bench upstream sends it. */
function repeated(chunk: Buffer): Buffer {
  const out = Buffer.alloc(SIZE);
  for (let at = 0; at < SIZE; at += chunk.length) chunk.copy(out, at);
  return out;
}

const r = prng(3);
const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const words = ["the", "proxy", "reads", "every", "byte", "of", "a", "response", "looking", "for", "values", "and", "then", "passes", "it", "on", "to", "agent", "with", "nothing", "changed", "\n"];
const randomBytes = Buffer.from(Array.from({ length: 64 * 1024 }, () => Math.floor(r() * 256)));
const bodies: [string, Buffer][] = [
  ["bench download (alphanumeric)", repeated(Buffer.alloc(64 * 1024, "abcdefghijklmnopqrstuvwxyz0123456789"))],
  ["random base64", repeated(Buffer.from(Array.from({ length: 64 * 1024 }, () => b64[Math.floor(r() * 64)]).join(""), "latin1"))],
  [
    "English-like text",
    repeated(
      Buffer.from(
        Array.from({ length: 16 * 1024 }, () => words[Math.floor(r() * words.length)])
          .join(" ")
          .slice(0, 64 * 1024),
        "latin1",
      ),
    ),
  ],
  ["random bytes (a % or \\ in every chunk: the general path)", repeated(randomBytes)],
];

/** pushPieces where it exists (what the proxy calls), push on an older tree (for a before/after). */
const push = (s: StreamScrubber, chunk: Buffer) => ("pushPieces" in s ? s.pushPieces(chunk) : (s as StreamScrubber).push(chunk));

function best(run: () => void): number {
  run(); // warm up
  let seconds = Number.POSITIVE_INFINITY;
  for (let t = 0; t < TRIALS; t++) {
    const start = process.cpuUsage();
    run();
    const used = process.cpuUsage(start);
    seconds = Math.min(seconds, (used.user + used.system) / 1e6);
  }
  return SIZE / MiB / seconds;
}

const literals = [...new Set(patterns.map((p) => p.bytes))];
const search = new MultiSearch(literals);
console.log(`${patterns.length} patterns, ${literals.length} literals, ${literals[literals.length - 1]!.length}–${literals[0]!.length} characters; ${SIZE / MiB} MiB per body`);
for (const [name, body] of bodies) {
  const CHUNK = 64 * 1024;
  const texts: string[] = [];
  for (let at = 0; at < body.length; at += CHUNK) texts.push(body.subarray(at, at + CHUNK).toString("latin1"));
  let found = 0;
  const scan = best(() => {
    for (const t of texts) search.scan(t, () => void found++);
  });
  const stream = (size: number) =>
    best(() => {
      const s = new StreamScrubber(patterns);
      for (let at = 0; at < body.length; at += size) push(s, body.subarray(at, at + size));
      s.end();
    });
  console.log(
    `${name}: MultiSearch.scan ${scan.toFixed(0)} MiB/s; StreamScrubber 64 KiB chunks ${stream(64 * 1024).toFixed(0)} MiB/s, 16 KiB chunks ${stream(16 * 1024).toFixed(0)} MiB/s (found ${found})`,
  );
}
for (const [name, body] of "scanBytes" in search ? bodies : []) {
  const CHUNK = 64 * 1024;
  const views: Buffer[] = [];
  for (let at = 0; at < body.length; at += CHUNK) views.push(body.subarray(at, at + CHUNK));
  const rate = best(() => {
    for (const v of views) search.scanBytes(v, () => undefined);
  });
  console.log(`${name}: MultiSearch.scanBytes ${rate.toFixed(0)} MiB/s`);
}

// The streams' searches alone, on a tree that has them.
const streamSearches = await import("../src/proxy/secret-compiled.ts").then(
  (m) => {
    const c = m.compiled(patterns);
    return [
      ["SampledSearch over the scrubber's anchors", c.scrubSearch().anchors],
      ["SampledSearch over whole values (the guard)", c.bytesSearch()],
    ] as const;
  },
  () => [] as const,
);
for (const [name, body] of bodies) {
  const views: Buffer[] = [];
  for (let at = 0; at < body.length; at += 64 * 1024) views.push(body.subarray(at, at + 64 * 1024));
  const rates = streamSearches.map(([what, s]) => `${what} ${best(() => views.forEach((v) => s.scanBytes(v, () => undefined))).toFixed(0)} MiB/s`);
  if (rates.length > 0) console.log(`${name}: ${rates.join("; ")}`);
}

// The upload side: the stream guard with the hold-back it has past the request buffer.
for (const [name, body] of bodies) {
  const guard = (size: number) =>
    best(() => {
      const g = new StreamGuard(patterns, longestSpelling(patterns));
      for (let at = 0; at < body.length; at += size) g.push(body.subarray(at, at + size));
      g.end();
    });
  console.log(`${name}: StreamGuard 64 KiB chunks ${guard(64 * 1024).toFixed(0)} MiB/s, 16 KiB chunks ${guard(16 * 1024).toFixed(0)} MiB/s`);
}
