// The key focus (src/tui/hooks/use-keys.tsx) and the Activity layout (src/tui/screens/activity.ts)
// without a terminal: keys for an owner that is not on screen yet wait and are replayed in order,
// a chunk is split for screens and kept whole for text inputs, what no owner takes goes to the
// global keys; Activity's columns always fit the width they are given.
import { describe, expect, test } from "bun:test";
import { type Key } from "ink";
import { KeyFocus } from "../../src/tui/hooks/use-keys.tsx";
import { activityHeader, activityRows, activityWidths, type LoggedRequest } from "../../src/tui/screens/activity.ts";

const key = (overrides: Partial<Key> = {}): Key => ({ return: false, escape: false, ctrl: false, meta: false, shift: false, tab: false, ...overrides }) as Key;

function recorder(log: string[], name: string, takes: (input: string) => boolean = () => true) {
  return { current: (input: string, k: Key) => (log.push(`${name}:${k.return ? "⏎" : input}`), takes(input)) };
}

describe("KeyFocus", () => {
  test("keys for an owner not yet registered wait, then replay in order when it registers", () => {
    const log: string[] = [];
    const focus = new KeyFocus("screen:0");
    focus.register("screen:0", { handler: { current: (input) => (log.push(`s0:${input}`), input === "a" ? (focus.give("prompt:1"), true) : true) }, takesText: false });
    focus.receive("a", key());
    focus.receive("secret", key());
    focus.receive("\r", key({ return: true }));
    expect(log).toEqual(["s0:a"]);
    focus.register("prompt:1", { handler: recorder(log, "p1"), takesText: true });
    expect(log).toEqual(["s0:a", "p1:secret", "p1:⏎"]);
  });

  test("a chunk of printable keys is split for a screen (each against the owner the previous left) and kept whole for a text input", () => {
    const log: string[] = [];
    const focus = new KeyFocus("screen:0");
    focus.register("screen:0", { handler: { current: (input) => (log.push(`s0:${input}`), input === "2" ? (focus.give("screen:1"), true) : true) }, takesText: false });
    focus.receive("k2jd", key());
    expect(log).toEqual(["s0:k", "s0:2"]);
    focus.register("screen:1", { handler: recorder(log, "s1"), takesText: false });
    expect(log).toEqual(["s0:k", "s0:2", "s1:j", "s1:d"]);
    focus.give("prompt:2");
    focus.register("prompt:2", { handler: recorder(log, "p2"), takesText: true });
    focus.receive("pasted value", key());
    expect(log.at(-1)).toBe("p2:pasted value");
  });

  test("a key the owner does not take goes to the global keys; one it takes does not", () => {
    const log: string[] = [];
    const focus = new KeyFocus("screen:0");
    focus.setGlobal(recorder(log, "global"));
    focus.register("screen:0", { handler: recorder(log, "s0", (input) => input === "x"), takesText: false });
    focus.receive("x", key());
    focus.receive("q", key());
    expect(log).toEqual(["s0:x", "s0:q", "global:q"]);
  });

  test("an unregistered owner's handler gets nothing after it leaves; a replaced registration does not remove the new one", () => {
    const log: string[] = [];
    const focus = new KeyFocus("unlock");
    const first = focus.register("unlock", { handler: recorder(log, "old"), takesText: true });
    const second = { handler: recorder(log, "new"), takesText: true };
    const unregisterSecond = focus.register("unlock", second);
    first();
    focus.receive("pw", key());
    expect(log).toEqual(["new:pw"]);
    unregisterSecond();
    focus.receive("later", key());
    expect(log).toEqual(["new:pw"]);
  });
});

function entry(host: string, path: string, extra: Partial<LoggedRequest> = {}): LoggedRequest {
  return { time: "2026-01-01T12:00:00.000Z", session: "s_1", vault: "default", method: "GET", host, path, service: null, status: 200, latency_ms: 5, error: null, via: "tunnel", ...extra };
}

describe("Activity layout", () => {
  test("at every width from 75 to 200 the columns fit, hosts of usual length are whole at 80, and cut cells end in …", () => {
    const entries = [
      entry("api.openai.com", "/v1/chat/completions"),
      entry("api.anthropic.com", "/v1/messages", { status: 502, error: "upstream_error" }),
      entry(`${"long".repeat(30)}.example.com`, `/${"p".repeat(300)}`, { blocked: "STRIPE_KEY", status: 403 }),
      ...Array.from({ length: 20 }, (_, i) => entry(`svc${i}.example.com`, `/v1/items/${i}`)),
    ];
    for (let width = 75; width <= 200; width++) {
      const widths = activityWidths(entries, width);
      expect(
        widths.reduce((a, b) => a + b, 0),
        `width ${width}`,
      ).toBeLessThanOrEqual(width);
      for (const r of activityRows(entries, widths)) expect(r.text.length, `width ${width}: ${r.text}`).toBeLessThanOrEqual(width);
      expect(activityHeader(widths)).toMatch(/^TIME\s+CODE\s+METHOD\s+HOST\s+PATH\s+SERVICE\s+ERROR\s+LATENCY$/);
    }
    const rows = activityRows(entries, activityWidths(entries, 80));
    expect(rows.find((r) => r.text.includes("api.anthropic.com"))!.text).toMatch(/\sapi\.anthropic\.com\s/);
    expect(rows.find((r) => r.text.includes("longlong"))!.text).toMatch(/longlong[a-z]*…/);
  });
});
