// `npm run bench:proxy`'s settings are checked before it does anything: a bad BENCH_ONLY is
// refused with one line and exit 2, before the run banner, the temp directory, the upstream or
// the server (it used to print the banner and start the server first).
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const scratch = mkdtempSync(join(tmpdir(), "av-bench-only-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

test("BENCH_ONLY=nonsense: refused at once, nothing printed or started before", async () => {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined && !name.startsWith("BENCH_")) env[name] = value;
  const proc = Bun.spawn([process.execPath, join(ROOT, "scripts/bench-proxy.ts")], {
    cwd: ROOT,
    // The temp directory a run would make lands in scratch, which must stay empty.
    env: { ...env, BENCH_ONLY: "nonsense", TMPDIR: scratch },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code, stderr).toBe(2);
  expect(stdout).toBe("");
  expect(stderr).toBe('bench:proxy: BENCH_ONLY="nonsense": "nonsense" is not a workload (1–7)\n');
  expect(readdirSync(scratch)).toEqual([]);
}, 20_000);
