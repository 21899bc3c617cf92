// The source cache with a fake clock and a fake fetch: one flight per key, fresh for the TTL,
// refreshed in the background from 80% of it without the caller waiting, the last good value for
// one more TTL while failing (retried in the background), then source_unavailable; health reported
// once per change.
import { describe, expect, test } from "bun:test";
import { SourceCache, type SourceHealth } from "../../src/sources/cache.ts";
import { type FetchResult } from "../../src/sources/runner.ts";
import { AgentVaultError } from "../../src/shared/errors.ts";

const spec = { from: "pass:team/github", ttl_ms: 10_000 };

function harness() {
  let now = 1_000_000;
  const queue: ((r: FetchResult) => void)[] = [];
  let calls = 0;
  const health: SourceHealth[] = [];
  const cache = new SourceCache({
    now: () => now,
    fetch: () => {
      calls++;
      return new Promise((resolve) => queue.push(resolve));
    },
    onHealth: (h) => health.push(h),
  });
  return {
    cache,
    health,
    advance: (ms: number) => (now += ms),
    calls: () => calls,
    answer: async (r: FetchResult) => {
      queue.shift()!(r);
      await Bun.sleep(0);
    },
  };
}

describe("SourceCache", () => {
  test("one fetch for many waiting requests; fresh for the TTL without fetching", async () => {
    const h = harness();
    const waits = [h.cache.ensure("v", "K", spec), h.cache.ensure("v", "K", spec), h.cache.ensure("v", "K", spec)];
    await Bun.sleep(0);
    expect(h.calls()).toBe(1);
    await h.answer({ ok: true, value: "one" });
    await Promise.all(waits);
    expect(h.cache.peek("v", "K", spec)).toBe("one");
    h.advance(7_000);
    await h.cache.ensure("v", "K", spec);
    expect(h.calls()).toBe(1);
  });

  test("from 80% of the TTL a request is served at once and the refresh runs behind it", async () => {
    const h = harness();
    const first = h.cache.ensure("v", "K", spec);
    await h.answer({ ok: true, value: "one" });
    await first;
    h.advance(8_500);
    let done = false;
    await h.cache.ensure("v", "K", spec).then(() => (done = true));
    expect(done).toBe(true); // did not wait for the fetch it started
    expect(h.calls()).toBe(2);
    expect(h.cache.peek("v", "K", spec)).toBe("one");
    await h.answer({ ok: true, value: "two" });
    expect(h.cache.peek("v", "K", spec)).toBe("two");
  });

  test("past the TTL a healthy source is fetched before use (a new value within the TTL)", async () => {
    const h = harness();
    const first = h.cache.ensure("v", "K", spec);
    await h.answer({ ok: true, value: "one" });
    await first;
    h.advance(10_001);
    const next = h.cache.ensure("v", "K", spec);
    await Bun.sleep(0);
    await h.answer({ ok: true, value: "two" });
    await next;
    expect(h.cache.peek("v", "K", spec)).toBe("two");
  });

  test("failing: the last good value for one more TTL, health said once, then source_unavailable naming the source", async () => {
    const h = harness();
    const first = h.cache.ensure("v", "K", spec);
    await h.answer({ ok: true, value: "one" });
    await first;
    h.advance(10_001);
    const stale = h.cache.ensure("v", "K", spec);
    await Bun.sleep(0);
    await h.answer({ ok: false, reason: "pass exited with status 2", detail: "gpg: decryption failed" });
    await stale; // served: the last good value is younger than two TTLs
    expect(h.cache.peek("v", "K", spec)).toBe("one");
    expect(h.health.filter((x) => !x.ok)).toHaveLength(1);
    expect(h.health.at(-1)).toMatchObject({ ok: false, reason: "pass exited with status 2", key: "K" });
    // While failing, a request does not wait: it gets the old value and a retry starts behind it.
    h.advance(3_000);
    let served = false;
    await h.cache.ensure("v", "K", spec).then(() => (served = true));
    expect(served).toBe(true);
    await h.answer({ ok: false, reason: "pass exited with status 2", detail: "" });
    expect(h.health.filter((x) => !x.ok)).toHaveLength(1);
    h.advance(7_000); // 20 s since the last good fetch
    const gone = h.cache.ensure("v", "K", spec).then(
      () => null,
      (e: unknown) => e,
    );
    await Bun.sleep(0);
    await h.answer({ ok: false, reason: "pass exited with status 2", detail: "" });
    const error = await gone;
    expect(error).toBeInstanceOf(AgentVaultError);
    expect((error as AgentVaultError).code).toBe("source_unavailable");
    expect((error as Error).message).toContain("pass:team/github");
    expect((error as Error).message).toContain("pass exited with status 2");
    expect((error as Error).message).not.toContain("gpg");
    expect(h.cache.peek("v", "K", spec)).toBeNull();
    // Recovery is reported.
    const back = h.cache.ensure("v", "K", spec);
    await Bun.sleep(0);
    await h.answer({ ok: true, value: "three" });
    await back;
    expect(h.health.at(-1)).toMatchObject({ ok: true });
  });

  test("a key pointed at another source starts with nothing, and the old value leaves the guard's list", async () => {
    const h = harness();
    const first = h.cache.ensure("v", "K", spec);
    await h.answer({ ok: true, value: "one" });
    await first;
    expect(h.cache.valuesOf("v")).toEqual([["K", "one"]]);
    const other = { from: "op://Team/GitHub/token", ttl_ms: 10_000 };
    expect(h.cache.peek("v", "K", other)).toBeNull();
    const next = h.cache.ensure("v", "K", other);
    await Bun.sleep(0);
    expect(h.cache.valuesOf("v")).toEqual([]);
    await h.answer({ ok: true, value: "two" });
    await next;
    expect(h.cache.valuesOf("v")).toEqual([["K", "two"]]);
  });

  test("at most four commands run at once; the rest wait their turn", async () => {
    const h = harness();
    const all = Array.from({ length: 10 }, (_, i) => h.cache.ensure("v", `K${i}`, spec));
    await Bun.sleep(0);
    expect(h.calls()).toBe(4);
    for (let i = 0; i < 10; i++) await h.answer({ ok: true, value: `v${i}` });
    await Promise.all(all);
    expect(h.calls()).toBe(10);
  });
});
