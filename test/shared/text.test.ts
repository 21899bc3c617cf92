// Unit tests of src/shared/text.ts: every character class a terminal acts on or that hides or
// reorders text comes out as a visible escape; ordinary text (accents, CJK, emoji) is untouched;
// the JSON form keeps the same value for a parser.
import { describe, expect, test } from "bun:test";
import { displaySafe, displaySafeLines, hasUnsafeText, jsonTerminalSafe, labelled } from "../../src/shared/text.ts";

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String.fromCodePoint(from + i));

/** Every character the issue (and the module) names, by class. */
const CLASSES: Record<string, string[]> = {
  "C0 controls": range(0x00, 0x1f),
  DEL: ["\x7f"],
  "C1 controls": range(0x80, 0x9f),
  "zero-width and LRM/RLM (U+200B–U+200F)": range(0x200b, 0x200f),
  "bidi embeddings and overrides (U+202A–U+202E)": range(0x202a, 0x202e),
  "line and paragraph separators (U+2028–U+2029)": range(0x2028, 0x2029),
  "bidi isolates (U+2066–U+2069)": range(0x2066, 0x2069),
  "word joiner and invisible operators (U+2060–U+2064)": range(0x2060, 0x2064),
  "deprecated format characters (U+206A–U+206F)": range(0x206a, 0x206f),
  "BOM / zero-width no-break space": ["\ufeff"],
  "soft hyphen": ["\u00ad"],
  "Arabic letter mark": ["\u061c"],
  "Mongolian vowel separator": ["\u180e"],
  "Hangul fillers": ["\u115f", "\u1160", "\u3164", "\uffa0"],
  "interlinear annotation": range(0xfff9, 0xfffb),
  "tags (ASCII smuggling)": range(0xe0000, 0xe007f),
  "supplementary variation selectors": ["\u{e0100}", "\u{e01ef}"],
  "lone surrogates": ["\ud800", "\udfff"],
};

describe("displaySafe", () => {
  for (const [name, chars] of Object.entries(CLASSES)) {
    test(`escapes ${name}`, () => {
      for (const char of chars) {
        const out = displaySafe(`a${char}b`);
        expect(out, `U+${char.codePointAt(0)!.toString(16)}`).toStartWith("a\\");
        expect(out.endsWith("b")).toBe(true);
        expect(hasUnsafeText(out)).toBe(false);
        expect(/^[\x20-\x7e]*$/.test(out)).toBe(true);
      }
    });
  }

  test("names what it escaped: \\x1b, \\n, \\r, \\t, \\u009b, \\u202e, \\u{e0041}", () => {
    expect(displaySafe("\x1b[1A\x1b[2K")).toBe("\\x1b[1A\\x1b[2K");
    expect(displaySafe("a\nb\rc\td")).toBe("a\\nb\\rc\\td");
    expect(displaySafe("\u009b31m")).toBe("\\u009b31m");
    expect(displaySafe("moc.elpmaxe\u202e")).toBe("moc.elpmaxe\\u202e");
    expect(displaySafe("\u{e0041}")).toBe("\\u{e0041}");
    expect(displaySafe("\x7f\x00")).toBe("\\x7f\\x00");
  });

  test("the attacks of the issue come out inert: OSC 52, OSC 8, SGR 8, cursor-up + erase-line", () => {
    const osc52 = "\x1b]52;c;ZXZpbA==\x07";
    const osc8 = "\x1b]8;;https://evil.example.com\x1b\\click\x1b]8;;\x1b\\";
    const hidden = "\x1b[8msecret\x1b[0m";
    const redraw = "ok\x1b[1A\x1b[2K\r  + fake: api.fake.test";
    for (const attack of [osc52, osc8, hidden, redraw]) {
      const out = displaySafe(attack);
      expect(out).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
    }
    expect(displaySafe(osc52)).toBe("\\x1b]52;c;ZXZpbA==\\x07");
  });

  test("ordinary text is untouched: printable ASCII, accents, CJK, emoji with their selectors and modifiers", () => {
    const ascii = range(0x20, 0x7e).join("");
    expect(displaySafe(ascii)).toBe(ascii);
    for (const text of ["café", "日本語のテキスト", "Привет", "👍🏽", "❤️", "✔︎", "a\\x1b literally"]) expect(displaySafe(text)).toBe(text);
    expect(hasUnsafeText("plain text")).toBe(false);
  });
});

describe("displaySafeLines and labelled", () => {
  test("keeps \\n and \\r\\n as line breaks; a lone \\r is escaped, never obeyed", () => {
    expect(displaySafeLines("one\r\ntwo\nthree")).toEqual(["one", "two", "three"]);
    expect(displaySafeLines("real\roverwritten")).toEqual(["real\\roverwritten"]);
    expect(displaySafeLines("a\u2028b")).toEqual(["a\\u2028b"]);
  });

  test("one line stays beside its label; more lines go behind a bar, so none looks like ours", () => {
    expect(labelled("  ", "how", "Settings > Keys")).toEqual(["  how: Settings > Keys"]);
    expect(labelled("  ", "how", "step 1\nApproving it would:\n\x1b[2K  nothing")).toEqual(["  how:", "    │ step 1", "    │ Approving it would:", "    │ \\x1b[2K  nothing"]);
  });
});

describe("jsonTerminalSafe", () => {
  test("the same value for a parser, with no raw C1, DEL, bidi or tag characters on the terminal", () => {
    const value = { message: "a\u202eb\u009bc\x7fd\u{e0041}e\u200bf\nline\x1b", nested: [{ host: "api.example.com" }] };
    const json = jsonTerminalSafe(JSON.stringify(value, null, 2));
    expect(JSON.parse(json)).toEqual(value);
    expect(json).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]|\udb40/);
    expect(json).toContain("\\u202e");
  });
});
