// Process identity by pid and start time: a live process matches, an exited one (reaped or a
// zombie) does not, and a pid with another start time (a recycled pid) does not.
import { expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { currentProcessIdentity, isProcessRunning, readStartTime } from "../../src/shared/liveness.ts";

test("this process is running under its own identity", () => {
  const me = currentProcessIdentity();
  expect(me.pid).toBe(process.pid);
  if (process.platform === "linux") expect(me.start).toMatch(/^\d+$/);
  expect(isProcessRunning(me)).toBe(true);
});

test("a child that exited is gone, zombie or reaped, and stays gone", async () => {
  const child = Bun.spawn(["sleep", "30"]);
  const identity = { pid: child.pid, start: readStartTime(child.pid) };
  expect(isProcessRunning(identity)).toBe(true);
  child.kill("SIGKILL");
  await child.exited;
  await Bun.sleep(250); // past the cache of an "alive" answer
  expect(isProcessRunning(identity)).toBe(false);
});

test.if(process.platform === "linux")("the same pid with another start time is another process", () => {
  const me = currentProcessIdentity();
  expect(isProcessRunning({ pid: me.pid, start: String(Number(me.start) + 1) })).toBe(false);
});

test.if(process.platform === "linux")("a command name with spaces and parentheses does not shift the fields", async () => {
  // The kernel's comm is the executable's file name: a copy of sleep under a hostile name.
  const dir = mkdtempSync(join(tmpdir(), "av-liveness-"));
  const odd = join(dir, "a) b (c");
  copyFileSync(Bun.which("sleep")!, odd);
  chmodSync(odd, 0o755);
  const child = Bun.spawn([odd, "30"]);
  await Bun.sleep(100);
  expect(readFileSync(`/proc/${child.pid}/stat`, "latin1")).toContain("(a) b (c)");
  const start = readStartTime(child.pid);
  expect(start).toMatch(/^\d+$/);
  // Started after this test process: a shifted field (num_threads, itrealvalue) would not be.
  expect(Number(start)).toBeGreaterThanOrEqual(Number(currentProcessIdentity().start));
  expect(isProcessRunning({ pid: child.pid, start })).toBe(true);
  child.kill("SIGKILL");
  await child.exited;
  rmSync(dir, { recursive: true, force: true });
});
