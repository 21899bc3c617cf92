// References to argv (src/vault/source.schema.ts) and the runner against real processes: no
// shell, the fixed PATH, the clean environment, the timeout, and a reason without stderr.
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sourceCommandOf, splitWords } from "../../src/vault/source.schema.ts";
import { runSource, sourceEnv } from "../../src/sources/runner.ts";

describe("sourceCommandOf", () => {
  test("each kind runs the documented command", () => {
    expect(sourceCommandOf("pass:team/github").argv).toEqual(["pass", "show", "--", "team/github"]);
    expect(sourceCommandOf("gopass:team/github").argv).toEqual(["gopass", "show", "--password", "--", "team/github"]);
    expect(sourceCommandOf("op://Team/GitHub/token").argv).toEqual(["op", "read", "--no-newline", "op://Team/GitHub/token"]);
    expect(sourceCommandOf("op://Team/GitHub/api/token").argv).toEqual(["op", "read", "--no-newline", "op://Team/GitHub/api/token"]);
    expect(sourceCommandOf("vault:secret/team/github#token").argv).toEqual(["vault", "kv", "get", "-mount=secret", "-field=token", "team/github"]);
    expect(sourceCommandOf(`exec:aws-vault exec "team prod" -- printenv TOKEN`).argv).toEqual(["aws-vault", "exec", "team prod", "--", "printenv", "TOKEN"]);
  });
  test.each([
    "pass:",
    "pass:../etc",
    "pass:a/../../b",
    "pass:-c",
    "pass:a b",
    "op://a/b",
    "op://a/b/c/d/e",
    "vault:secret#x",
    "vault:secret/p",
    "vault:-m/p#f",
    "exec:",
    "exec:a | b",
    "exec:echo $HOME",
    "exec:x 'open",
    "exec:./rel",
    "exec:a\nb",
    "file:/x",
  ])("%p is refused", (from) => {
    expect(() => sourceCommandOf(from)).toThrow(/source/);
  });
  test("quoting works without a shell", () => {
    expect(splitWords("x", `a 'b c' "d \\" e" f\\ g`)).toEqual(["a", "b c", 'd " e', "f g"]);
  });
});

describe("runSource", () => {
  const dir = mkdtempSync(join(tmpdir(), "av-runner-"));
  const script = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  };
  script("ok", 'printf "%s\\n" "$1"');
  script("envdump", "env");
  script("slow", "sleep 5");
  script("loud", 'echo "the secret is hunter2" >&2; exit 7');
  script("twolines", 'printf "a\\nb\\n"');
  const path = `${dir}:/usr/bin:/bin`;

  test("argv reaches the command as words; one final newline is dropped", async () => {
    expect(await runSource(sourceCommandOf("exec:ok 'x y'"), { path })).toEqual({ ok: true, value: "x y" });
  });
  test("the environment is the allowed names only", async () => {
    const r = await runSource(sourceCommandOf("exec:envdump"), {
      path,
      env: { HOME: "/h", AGENT_VAULT_MASTER_PASSWORD: "pw", HTTPS_PROXY: "http://x", VAULT_TOKEN: "t", OP_ACCOUNT: "a", PATH: "/evil" },
    });
    expect(r.ok).toBe(false); // several lines: refused as a value
    expect(sourceEnv({ HOME: "/h", AGENT_VAULT_MASTER_PASSWORD: "pw", HTTPS_PROXY: "x", VAULT_TOKEN: "t", OP_ACCOUNT: "a", PATH: "/evil" }, path)).toEqual({
      PATH: path,
      HOME: "/h",
      VAULT_TOKEN: "t",
      OP_ACCOUNT: "a",
    });
  });
  test("a bare name is looked up on the given PATH only", async () => {
    const r = await runSource(sourceCommandOf("exec:ok"), { path: "/usr/bin:/bin" });
    expect(r).toMatchObject({ ok: false, reason: expect.stringContaining("not found on the source PATH") });
  });
  test("a timeout kills it; stderr is kept apart from the reason", async () => {
    const slow = await runSource(sourceCommandOf("exec:slow"), { path, timeoutMs: 200 });
    expect(slow).toMatchObject({ ok: false, reason: "slow did not finish within 0s" });
    const loud = await runSource(sourceCommandOf("exec:loud"), { path });
    expect(loud).toMatchObject({ ok: false, reason: "loud exited with status 7" });
    if (!loud.ok) expect(loud.detail).toContain("hunter2");
    expect(await runSource(sourceCommandOf("exec:twolines"), { path })).toMatchObject({ ok: false, reason: expect.stringContaining("line break") });
  });
});
