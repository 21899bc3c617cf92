// Many processes, one data directory (docs/vault-format.md section 7): writers are serialized by
// the lock directory and land by atomic rename, so concurrent writers lose nothing, a writer killed
// at any moment leaves the previous complete file, and stray temp files never break a reader.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, cleanEnv, type RunResult, type TempHome, tempHome } from "../support/binary.ts";

const homes: TempHome[] = [];
afterAll(() => {
  for (const home of homes) home.cleanup();
});

async function newHome(): Promise<TempHome> {
  const home = await tempHome();
  homes.push(home);
  return home;
}

function describeRun(args: readonly string[], r: RunResult): string {
  return `agent-vault ${args.join(" ")} -> exit ${r.code}\n  stdout: ${JSON.stringify(r.stdout.slice(0, 500))}\n  stderr: ${JSON.stringify(r.stderr)}`;
}

async function ok(home: TempHome, args: readonly string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<RunResult> {
  const r = await home.run(args, opts);
  if (r.code !== 0) throw new Error(`expected success:\n${describeRun(args, r)}`);
  return r;
}

interface RevealedCredential {
  key: string;
  value: string;
}

/** Every credential with its value, in one read. */
async function revealAll(home: TempHome): Promise<Map<string, string>> {
  const r = await ok(home, ["vault", "credential", "list", "--reveal", "--json"]);
  const list = JSON.parse(r.stdout) as RevealedCredential[];
  return new Map(list.map((c) => [c.key, c.value]));
}

function tempFiles(home: TempHome): string[] {
  return readdirSync(home.dir).filter((name) => name.endsWith(".tmp"));
}

describe("concurrent writers", () => {
  test("20 concurrent `credential set` processes all succeed and none of their writes is lost", async () => {
    const home = await newHome();
    const n = 20;
    const keys = Array.from({ length: n }, (_, i) => `KEY_${i}`);
    const results = await Promise.all(keys.map((key, i) => home.run(["vault", "credential", "set", `${key}=value_${i}`])));
    results.forEach((r, i) => {
      if (r.code !== 0) throw new Error(`writer ${i} failed:\n${describeRun(["vault", "credential", "set", `${keys[i]}=value_${i}`], r)}`);
      expect(r.stderr).toContain(`stored ${keys[i]} in vault "default"`);
    });

    const list = JSON.parse((await ok(home, ["vault", "credential", "list", "--json"])).stdout) as { key: string }[];
    expect(list.map((c) => c.key).sort()).toEqual([...keys].sort());

    const gets = await Promise.all(keys.map((key) => ok(home, ["vault", "credential", "get", key])));
    expect(gets.map((r) => r.stdout)).toEqual(keys.map((_, i) => `value_${i}\n`));

    // The lock is released and no temp file is left behind.
    expect(existsSync(join(home.dir, "vault.av.lock"))).toBe(false);
    expect(tempFiles(home)).toEqual([]);
  }, 90_000);

  test("concurrent writers to different vaults and of different kinds all land", async () => {
    const home = await newHome();
    await ok(home, ["vault", "create", "second"]);
    await ok(home, ["vault", "credential", "set", "SVC_TOKEN=t"]);
    const jobs: (readonly string[])[] = [
      ...Array.from({ length: 6 }, (_, i) => ["vault", "credential", "set", `D_${i}=d${i}`]),
      ...Array.from({ length: 6 }, (_, i) => ["vault", "credential", "set", `S_${i}=s${i}`, "--vault", "second"]),
      ...Array.from({ length: 4 }, (_, i) => ["vault", "service", "add", "--name", `svc-${i}`, "--host", `svc${i}.example`, "--auth-type", "bearer", "--token-key", "SVC_TOKEN"]),
      ["vault", "settings", "--unmatched", "deny", "--vault", "second"],
      ["vault", "create", "third"],
    ];
    const results = await Promise.all(jobs.map((args) => home.run(args)));
    results.forEach((r, i) => {
      if (r.code !== 0) throw new Error(describeRun(jobs[i]!, r));
    });
    const [defaults, seconds] = await Promise.all([revealAll(home), ok(home, ["vault", "credential", "list", "--reveal", "--json", "--vault", "second"])]);
    const expectedDefaults: [string, string][] = [["SVC_TOKEN", "t"], ...Array.from({ length: 6 }, (_, i): [string, string] => [`D_${i}`, `d${i}`])];
    expect([...defaults.entries()].sort()).toEqual(expectedDefaults.sort());
    expect((JSON.parse(seconds.stdout) as RevealedCredential[]).map((c) => [c.key, c.value]).sort()).toEqual(Array.from({ length: 6 }, (_, i) => [`S_${i}`, `s${i}`]).sort());
    const services = JSON.parse((await ok(home, ["vault", "service", "list", "--json"])).stdout) as { name: string }[];
    expect(services.map((s) => s.name).sort()).toEqual(["svc-0", "svc-1", "svc-2", "svc-3"]);
    const vaults = JSON.parse((await ok(home, ["vault", "list", "--json"])).stdout) as { name: string; unmatched: string }[];
    expect(vaults.map((v) => [v.name, v.unmatched])).toEqual([
      ["default", "passthrough"],
      ["second", "deny"],
      ["third", "passthrough"],
    ]);
  }, 90_000);
});

describe("crashes", () => {
  test("a writer killed with SIGKILL at random moments never loses an acknowledged write or breaks the vault", async () => {
    const home = await newHome();
    const env = cleanEnv(home.env);

    // Calibrate: how long does one write take here, spawn to exit? Kills are spread over that
    // window (and a little past it) so that some land before, some during and some after the write.
    const t0 = performance.now();
    await ok(home, ["vault", "credential", "set", "CALIBRATE=1"]);
    const writeMs = performance.now() - t0;
    const window = Math.max(80, Math.round(writeMs * 1.3));

    const lockDir = join(home.dir, "vault.av.lock");
    // Most kills land at a random moment; a few wait for the lock directory or the temp file.
    const TARGETED = new Map<number, "lock" | "tmp">([
      [6, "lock"],
      [12, "tmp"],
      [18, "lock"],
      [24, "tmp"],
    ]);
    const expected = new Map<string, string>([["CALIBRATE", "1"]]);
    const attempted = new Map<string, string>();
    let acknowledged = 0;
    let killed = 0;
    const iterations = 25;
    for (let n = 0; n < iterations; n++) {
      const key = `K_${n}`;
      // Every third value is long (tens of KiB), to widen the write itself.
      const value = n % 3 === 0 ? `v_${n}_${"x".repeat(20_000 + Math.floor(Math.random() * 20_000))}` : `v_${n}`;
      attempted.set(key, value);
      const mode = TARGETED.get(n) ?? "random";
      const proc = Bun.spawn([BINARY, "vault", "credential", "set", `${key}=${value}`], { env, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
      const stderr = new Response(proc.stderr).text();
      if (mode === "random") {
        await Bun.sleep(Math.random() * window);
      } else {
        // Kill the moment the writer holds the lock, or has its temp file open: the worst moments.
        const seen = mode === "lock" ? () => existsSync(lockDir) : () => tempFiles(home).length > 0;
        const deadline = performance.now() + 5_000;
        while (proc.exitCode === null && !seen() && performance.now() < deadline) await Bun.sleep(0);
      }
      proc.kill("SIGKILL");
      await proc.exited;
      if (proc.exitCode === 0 && proc.signalCode === null) {
        expected.set(key, value);
        acknowledged++;
      } else if (proc.signalCode === "SIGKILL") {
        killed++;
      } else {
        // Neither acknowledged nor killed: it failed on its own, which must not happen.
        throw new Error(`writer ${n} exited ${proc.exitCode} without being killed: ${await stderr}`);
      }

      // The vault still opens, every acknowledged write is there with its value, and anything
      // else present is one of the attempted writes, whole (no torn or mixed values).
      const present = await revealAll(home);
      for (const [k, v] of expected) expect(present.get(k), `acknowledged ${k} after iteration ${n}`).toBe(v);
      for (const [k, v] of present) expect(attempted.get(k) ?? expected.get(k), `unexpected value of ${k}`).toBe(v);
      // A killed writer that did rename still counts: it is durable from now on.
      for (const [k, v] of present) expected.set(k, v);

      if (mode !== "random") {
        // A writer killed while holding the lock leaves it (and maybe a temp file) behind; the next
        // writer must take the stale lock over (after ~4 s) and clean up.
        await ok(home, ["vault", "credential", "set", `WITNESS_${n}=w${n}`]);
        expected.set(`WITNESS_${n}`, `w${n}`);
        expect(tempFiles(home)).toEqual([]);
        expect(existsSync(lockDir)).toBe(false);
      }
    }

    // After the last kill, a normal writer still gets through: a stale lock left by a killed holder
    // is taken over (after ~4 s at most), and it removes stray temp files as it writes.
    const final = await ok(home, ["vault", "credential", "set", "AFTER_CRASHES=ok"]);
    expect(final.stderr).toContain("stored AFTER_CRASHES");
    expect(tempFiles(home)).toEqual([]);
    expect(existsSync(join(home.dir, "vault.av.lock"))).toBe(false);
    const present = await revealAll(home);
    for (const [k, v] of expected) expect(present.get(k)).toBe(v);
    expect(present.get("AFTER_CRASHES")).toBe("ok");
    expect(present.size).toBe(expected.size + 1);
    expect(expected.size).toBeGreaterThanOrEqual(1 + acknowledged + TARGETED.size);
    // Both outcomes happened, so the test exercised something (the window is wide enough that
    // some writers finish and some are killed).
    expect(acknowledged + killed).toBe(iterations);
    expect(killed).toBeGreaterThan(0);
  }, 180_000);
});

describe("stray temp files", () => {
  test("stray .tmp files beside the vault do not break reads, and the next writer removes them", async () => {
    const home = await newHome();
    await ok(home, ["vault", "credential", "set", "BEFORE=stray"]);
    const vaultBytes = readFileSync(join(home.dir, "vault.av"));
    const strays = {
      "vault.av.99999.deadbeef.tmp": Buffer.from("garbage, not a vault file\n"),
      "vault.av.12345.0badf00d.tmp": vaultBytes.subarray(0, Math.floor(vaultBytes.length / 2)), // a half-written copy
      "vault.av.1.00000000.tmp": Buffer.alloc(0),
    };
    for (const [name, bytes] of Object.entries(strays)) writeFileSync(join(home.dir, name), bytes, { mode: 0o600 });
    expect(tempFiles(home).sort()).toEqual(Object.keys(strays).sort());

    const [list, get, vaults] = await Promise.all([ok(home, ["vault", "credential", "list", "--json"]), ok(home, ["vault", "credential", "get", "BEFORE"]), ok(home, ["vault", "list", "--json"])]);
    expect((JSON.parse(list.stdout) as { key: string }[]).map((c) => c.key)).toEqual(["BEFORE"]);
    expect(get.stdout).toBe("stray\n");
    expect((JSON.parse(vaults.stdout) as { name: string }[]).map((v) => v.name)).toEqual(["default"]);
    // Reads leave them alone; the vault file is untouched.
    expect(tempFiles(home).sort()).toEqual(Object.keys(strays).sort());
    expect(readFileSync(join(home.dir, "vault.av")).equals(vaultBytes)).toBe(true);

    await ok(home, ["vault", "credential", "set", "AFTER=written"]);
    expect(tempFiles(home)).toEqual([]);
    const present = await revealAll(home);
    expect([...present.entries()]).toEqual([
      ["AFTER", "written"],
      ["BEFORE", "stray"],
    ]);
  }, 60_000);
});
