// The CLI's output helpers (src/cli/io.ts) escape what they print: an error whose message carries a
// provider's text (an OAuth error_description), a table cell, a note, JSON. Captured in-process.
import { afterEach, describe, expect, test } from "bun:test";
import { printJson, printNote, printTable, reportError } from "../../src/cli/io.ts";
import { AgentVaultError } from "../../src/shared/errors.ts";

const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/;
const TRICK = "\x1b]52;c;ZXZpbA==\x07\u009b2J\u202eRLO\x1b[8mHIDDEN";

let restore: (() => void) | null = null;
afterEach(() => restore?.());

/** What `fn` writes to stdout and stderr. */
function capture(fn: () => void): string {
  let out = "";
  const original = { stdout: process.stdout.write, stderr: process.stderr.write };
  const sink = ((chunk: string | Uint8Array) => {
    out += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = sink;
  process.stderr.write = sink;
  restore = () => {
    process.stdout.write = original.stdout;
    process.stderr.write = original.stderr;
    restore = null;
  };
  try {
    fn();
  } finally {
    restore();
  }
  return out;
}

describe("CLI output is escaped", () => {
  test("an error carrying a provider's text, and its hint", () => {
    const out = capture(() => reportError(new AgentVaultError("oauth_refresh_failed", `refreshing GH failed: invalid_grant: ${TRICK}`, { hint: `retry ${TRICK}` })));
    expect(out).not.toMatch(RAW);
    expect(out).toContain("invalid_grant: \\x1b]52;c;ZXZpbA==\\x07\\u009b2J\\u202eRLO\\x1b[8mHIDDEN");
    expect(out).toContain("hint: retry \\x1b]52");
  });

  test("an unexpected error's first line", () => {
    const out = capture(() => reportError(new Error(`boom ${TRICK}\nsecond line`)));
    expect(out).not.toMatch(RAW);
    expect(out).not.toContain("second line");
  });

  test("table cells, notes (line breaks kept, nothing else) and JSON (same value)", () => {
    const table = capture(() => printTable(["A", "B"], [[`x${TRICK}`, "line\nbreak"]], 200));
    expect(table).not.toMatch(RAW);
    expect(table).toContain("line\\nbreak");
    const note = capture(() => printNote(`one\ntwo\r${TRICK}`));
    expect(note).not.toMatch(RAW);
    expect(note).toBe(`one\ntwo\\r\\x1b]52;c;ZXZpbA==\\x07\\u009b2J\\u202eRLO\\x1b[8mHIDDEN\n`);
    const json = capture(() => printJson({ message: TRICK }));
    expect(json).not.toMatch(RAW);
    expect(JSON.parse(json)).toEqual({ message: TRICK });
  });
});
