// The guard's lenient views (src/proxy/lenient-views.ts): what each takes out or decodes, and that
// most text gets none.
import { describe, expect, test } from "bun:test";
import { lenientViews } from "../../src/proxy/lenient-views.ts";

describe("lenientViews", () => {
  test("text without a marker has no view", () => {
    expect(lenientViews("abcdefXYZ0123_-+/")).toEqual([]);
  });

  test("whitespace, NULs, zero-width spaces and soft hyphens are taken out", () => {
    const zwsp = Buffer.from("ab\u200bcd\u00adef", "utf8").toString("latin1");
    expect(lenientViews("ab cd\r\nef\tgh")).toContain("abcdefgh");
    expect(lenientViews(zwsp)).toContain("abcdef");
    expect(lenientViews(Buffer.from("tok", "utf16le").toString("latin1"))).toContain("tok");
  });

  test("HTML character references and quoted-printable are decoded", () => {
    expect(lenientViews("&#116;&#x6f;&#X6B;")).toContain("tok");
    const qp = lenientViews("to=\r\nk=5Fx");
    expect(qp).toContain("tok_x");
  });
});
