// Attack: the agent (same user, a shell) plants links in the data directory so the broker writes
// where the agent chooses: a symlink or a hard link at requests.log, server.pid, server.log, the
// CA files, a vault temp-file name or the lock, each pointing at a file in the attacker's home that
// holds a canary. The broker must never write through one: the target keeps its canary content
// byte for byte, and the broker either replaces the link with its own file or stops with a clear
// error. A data directory that is itself a symlink, or writable by others, is refused.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { lstatSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { asAgent } from "../support/attacker.ts";
import { cleanEnv, recordingCli, type TempHome, tempHome } from "../support/binary.ts";
import { runCleanups, waitUntil } from "../support/process.ts";
import { startServer } from "../support/server.ts";

const cleanups: (() => Promise<void> | void)[] = [];
const outputs: string[] = [];
const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;

/** Runs a shell command as the attacker (the unprivileged user). */
async function attacker(script: string): Promise<string> {
  const proc = Bun.spawn(asAgent(["sh", "-c", script]), { env: cleanEnv(), stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`attacker script failed (${code}): ${script}\n${stderr}`);
  return stdout;
}

interface Target {
  readonly path: string;
  readonly content: string;
  /** The target's bytes and time stamps are exactly as planted. */
  expectUntouched(): void;
}

/** A file in the attacker's home with canary content, the target of a planted link. */
async function plantTarget(home: TempHome, name: string): Promise<Target> {
  const path = join(home.dir, "..", "user-home", `${name}.txt`);
  const content = `canary ${name} ${randomBytes(8).toString("hex")}\n`;
  await attacker(`printf '%s' '${content}' > '${path}' && touch -d '2001-01-01' '${path}'`);
  const before = statSync(path);
  return {
    path,
    content,
    expectUntouched: () => {
      expect(readFileSync(path, "utf8")).toBe(content);
      expect(statSync(path).mtimeMs).toBe(before.mtimeMs);
    },
  };
}

async function newHome(): Promise<{ home: TempHome; ok: ReturnType<typeof recordingCli>["ok"]; av: ReturnType<typeof recordingCli>["av"] }> {
  const home = await tempHome({ asAgent: true });
  cleanups.push(() => home.cleanup());
  const cli = recordingCli(
    () => home,
    () => ({ AGENT_VAULT_LOCK_TIMEOUT_MS: "3000" }),
    outputs,
  );
  await cli.ok(["vault", "credential", "set", "SVC_KEY=-"], SECRET);
  return { home, ...cli };
}

/** One request through the proxy, so the server writes a line to requests.log. */
async function proxyRequest(mitmPort: number, token = "bogus"): Promise<void> {
  await attacker(`curl -s -m 5 -o /dev/null -x 'http://${token}:default@127.0.0.1:${mitmPort}' http://unlisted.test/ || true`);
}

const isRegularFile = (path: string) => {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
};

afterAll(async () => {
  await runCleanups(cleanups);
  for (const text of outputs) expect(text).not.toContain(SECRET);
}, 30_000);

describe("planted links in the data directory are never written through", () => {
  test("requests.log as a symlink, then as a hard link: the target keeps its canary, the log is a file of its own", async () => {
    const { home } = await newHome();
    const log = join(home.dir, "requests.log");
    const soft = await plantTarget(home, "soft");
    await attacker(`ln -sf '${soft.path}' '${log}'`);
    const server = await startServer(home, {}, cleanups);
    await proxyRequest(server.mitmPort);
    await waitUntil("a log line in requests.log", () => isRegularFile(log) && readFileSync(log, "utf8").includes("unlisted.test"), 5_000);
    soft.expectUntouched();

    // Now a hard link (O_NOFOLLOW alone does not see one): the next line must not land in it.
    const hard = await plantTarget(home, "hard");
    await attacker(`rm -f '${log}' && ln '${hard.path}' '${log}'`);
    await proxyRequest(server.mitmPort);
    await waitUntil("requests.log replaced by a file of its own", () => lstatSync(log).nlink === 1 && readFileSync(log, "utf8").includes("unlisted.test"), 5_000);
    hard.expectUntouched();
    expect((lstatSync(log).mode & 0o777).toString(8)).toBe("600");

    // And a FIFO: the server neither hangs nor stops logging.
    await attacker(`rm -f '${log}' && mkfifo '${log}'`);
    await proxyRequest(server.mitmPort);
    await waitUntil("requests.log a regular file again", () => isRegularFile(log) && readFileSync(log, "utf8").includes("unlisted.test"), 5_000);
    await server.stop();
  }, 60_000);

  test("server.pid and the CA files as symlinks: replaced by the server's own files, targets untouched", async () => {
    const { home } = await newHome();
    const pid = await plantTarget(home, "pid");
    const ca = await plantTarget(home, "ca");
    const bundle = await plantTarget(home, "bundle");
    await attacker(
      `rm -f '${home.dir}/ca.pem' '${home.dir}/ca-bundle.pem' && ln -s '${pid.path}' '${home.dir}/server.pid' && ln -s '${ca.path}' '${home.dir}/ca.pem' && ln -s '${bundle.path}' '${home.dir}/ca-bundle.pem'`,
    );
    const server = await startServer(home, {}, cleanups);
    for (const target of [pid, ca, bundle]) target.expectUntouched();
    for (const name of ["server.pid", "ca.pem", "ca-bundle.pem"]) expect(isRegularFile(join(home.dir, name))).toBe(true);
    expect((lstatSync(join(home.dir, "server.pid")).mode & 0o777).toString(8)).toBe("600");
    expect((lstatSync(join(home.dir, "ca.pem")).mode & 0o777).toString(8)).toBe("644");
    expect(readFileSync(join(home.dir, "ca.pem"), "utf8")).toContain("BEGIN CERTIFICATE");
    await server.stop();
  }, 60_000);

  test("server.log of a detached server as a symlink: replaced, target untouched", async () => {
    const { home, ok } = await newHome();
    const target = await plantTarget(home, "server-log");
    await attacker(`ln -s '${target.path}' '${home.dir}/server.log'`);
    await ok(["server", "-d", "--port", "0", "--mitm-port", "0"]);
    try {
      target.expectUntouched();
      expect(isRegularFile(join(home.dir, "server.log"))).toBe(true);
    } finally {
      await ok(["server", "stop"]);
    }
  }, 60_000);

  test("a symlink at a vault temp-file name and at the lock: removed (never followed), the write succeeds", async () => {
    const { home, ok } = await newHome();
    const tmpTarget = await plantTarget(home, "tmp");
    const lockTarget = await plantTarget(home, "lock");
    const tmpName = join(home.dir, "vault.av.4242.deadbeef.tmp");
    await attacker(`ln -s '${tmpTarget.path}' '${tmpName}' && ln -s '${lockTarget.path}' '${home.dir}/vault.av.lock'`);
    await ok(["vault", "credential", "set", "OTHER_KEY=-"], `${SECRET}-2`);
    tmpTarget.expectUntouched();
    lockTarget.expectUntouched();
    expect(() => lstatSync(tmpName)).toThrow();
    // The lock directory is gone again and the vault holds the new key.
    expect(() => lstatSync(join(home.dir, "vault.av.lock"))).toThrow();
    const listed = await ok(["vault", "credential", "list", "--json"]);
    expect(listed.stdout).toContain("OTHER_KEY");

    // The lock as a symlink to a directory of the attacker's: nothing is made or touched in it.
    const dir = join(home.dir, "..", "user-home", "lockdir");
    await attacker(`mkdir '${dir}' && touch -d '2001-01-01' '${dir}' && ln -s '${dir}' '${home.dir}/vault.av.lock'`);
    const before = statSync(dir).mtimeMs;
    await ok(["vault", "credential", "set", "THIRD_KEY=-"], `${SECRET}-3`);
    expect(statSync(dir).mtimeMs).toBe(before);
    expect(statSync(dir).isDirectory()).toBe(true);
  }, 60_000);

  test("the vault file itself as a symlink: a clear error, the target untouched", async () => {
    const { home, av } = await newHome();
    const copy = join(home.dir, "..", "user-home", "vault-copy.av");
    await attacker(`cp '${home.dir}/vault.av' '${copy}' && touch -d '2001-01-01' '${copy}' && ln -sf '${copy}' '${home.dir}/vault.av'`);
    const bytes = readFileSync(copy);
    const r = await av(["vault", "credential", "set", "NEW_KEY=-"], "value-that-must-not-land");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/symbolic link/);
    expect(readFileSync(copy).equals(bytes)).toBe(true);
  }, 60_000);

  test("a data directory that is a symlink, or writable by others, is refused with one clear error", async () => {
    const { home, av } = await newHome();
    const link = join(home.dir, "..", "user-home", "vault-link");
    await attacker(`ln -s '${home.dir}' '${link}'`);
    const viaLink = await av(["vault", "credential", "list"]);
    // The link itself is not used as the data directory here (AGENT_VAULT_HOME is the real path);
    // point it there explicitly.
    const linked = await home.run(["vault", "credential", "list"], { env: { AGENT_VAULT_HOME: link } });
    expect(viaLink.code).toBe(0);
    expect(linked.code).toBe(1);
    expect(linked.stderr).toMatch(/data directory .* is a symbolic link/);
    expect(
      linked.stderr
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("agent-vault: error")).length,
    ).toBe(1);

    await attacker(`chmod 0777 '${home.dir}'`);
    const open = await av(["vault", "credential", "list"]);
    expect(open.code).toBe(1);
    expect(open.stderr).toMatch(/writable by group or others/);
    await attacker(`chmod 0700 '${home.dir}'`);
    expect((await av(["vault", "credential", "list"])).code).toBe(0);
  }, 60_000);
});
