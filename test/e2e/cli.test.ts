// End-to-end tests of the command line: every command is driven through the compiled binary
// (dist/agent-vault), and each test asserts what a user or an agent would observe: stdout, stderr,
// exit codes and what ends up on disk. DESIGN "Command line" / "Data directory" and
// docs/vault-format.md are the contracts.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanEnv, type RunResult, runBinary, TEST_PASSWORD, type TempHome, tempHome } from "../support/binary.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

/** A secret that must never show up anywhere except `get` and `list --reveal`. */
const CANARY = `canary-${randomBytes(12).toString("hex")}`;

/** Every output of every run in this file, with whether it may legitimately contain a value. */
const transcript: { args: readonly string[]; result: RunResult; mayReveal: boolean }[] = [];

const homes: TempHome[] = [];
const scratchDirs: string[] = [];

afterAll(() => {
  for (const home of homes) home.cleanup();
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

async function newHome(init: "password" | "no-password" | false = "password"): Promise<TempHome> {
  const home = await tempHome({ init });
  homes.push(home);
  return home;
}

function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "av-e2e-"));
  scratchDirs.push(dir);
  return dir;
}

/** Runs the binary in `home`, recording the outputs for the canary check. */
async function av(home: TempHome, args: readonly string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<RunResult> {
  const result = await home.run(args, opts);
  const reveals = (args.includes("get") && args.includes("credential")) || (args.includes("list") && args.includes("--reveal"));
  transcript.push({ args, result, mayReveal: reveals });
  return result;
}

function describeRun(args: readonly string[], r: RunResult): string {
  return `agent-vault ${args.join(" ")}\n  exit ${r.code}\n  stdout: ${JSON.stringify(r.stdout)}\n  stderr: ${JSON.stringify(r.stderr)}`;
}

/** Runs and requires exit 0; the failure message shows the whole run. */
async function ok(home: TempHome, args: readonly string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<RunResult> {
  const r = await av(home, args, opts);
  if (r.code !== 0) throw new Error(`expected success:\n${describeRun(args, r)}`);
  return r;
}

async function okJson<T = unknown>(home: TempHome, args: readonly string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<T> {
  const r = await ok(home, [...args, "--json"], opts);
  return JSON.parse(r.stdout) as T;
}

/**
 * The error contract: exit code, one `agent-vault: error:` line, an optional `hint:` line,
 * nothing on stdout, no stack trace. Returns the message (the text after `error: `).
 */
function expectError(r: RunResult, exitCode: number, message?: RegExp): { message: string; hint: string | undefined } {
  // `init` announces the test-only KDF hook (set by the test helper) before anything else.
  const lines = r.stderr
    .replace(/\n$/, "")
    .split("\n")
    .filter((line) => !line.startsWith("warning: AGENT_VAULT_INSECURE_TEST_KDF=1 is set"));
  const context = `stderr was: ${JSON.stringify(r.stderr)} (exit ${r.code})`;
  expect(r.code, context).toBe(exitCode);
  expect(r.stdout, context).toBe("");
  expect(lines[0], context).toMatch(/^agent-vault: error: \S/);
  expect(lines.length, context).toBeGreaterThanOrEqual(1);
  expect(lines.length, context).toBeLessThanOrEqual(2);
  if (lines.length === 2) expect(lines[1], context).toMatch(/^hint: \S/);
  expect(r.stderr, context).not.toMatch(/^\s+at /m);
  expect(r.stderr, context).not.toContain("Error:");
  const msg = lines[0]!.slice("agent-vault: error: ".length);
  if (message) expect(msg, context).toMatch(message);
  return { message: msg, hint: lines[1]?.slice("hint: ".length) };
}

function vaultFile(home: TempHome): string {
  return join(home.dir, "vault.av");
}

function keyFile(home: TempHome): string {
  return join(home.dir, "vault.key");
}

/** The bytes of every file in the data directory, to prove a failed command changed nothing. */
function snapshot(home: TempHome): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(home.dir).sort()) {
    const path = join(home.dir, name);
    files[name] = statSync(path).isDirectory() ? "<dir>" : createHash("sha256").update(readFileSync(path)).digest("hex");
  }
  return files;
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

/** DESIGN "Data directory": files are 0600, except the (public) CA certificates. */
function expectPrivateFiles(home: TempHome): void {
  for (const name of readdirSync(home.dir)) {
    const m = mode(join(home.dir, name));
    expect(m & 0o022, `${name} is writable by others (${m.toString(8)})`).toBe(0);
    if (!name.endsWith(".pem")) expect(m, `${name} has mode ${m.toString(8)}`).toBe(0o600);
  }
}

interface CredentialView {
  key: string;
  type: string;
  description: string;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  metadata: Record<string, string>;
  services: string[];
  value?: string;
}

interface ServiceView {
  name: string;
  host: string;
  auth: Record<string, unknown>;
  enabled: boolean;
  description?: string;
  created_at: string;
}

interface VaultView {
  name: string;
  current: boolean;
  credentials: number;
  services: number;
  unmatched: string;
  created_at: string;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

async function getValue(home: TempHome, key: string, extra: readonly string[] = [], opts: { env?: Record<string, string | undefined> } = {}): Promise<string> {
  const r = await ok(home, ["vault", "credential", "get", key, ...extra], opts);
  expect(r.stdout.endsWith("\n")).toBe(true);
  return r.stdout.slice(0, -1);
}

const NO_PASSWORD_ENV = { AGENT_VAULT_MASTER_PASSWORD: undefined };

/** Per-test timeout: every test spawns the binary many times (~0.1-0.3 s each). */
const SLOW = 60_000;

// ---------------------------------------------------------------------------------------------

describe("init", () => {
  test(
    "--password-stdin creates a 0700 home with a 0600 vault file and no key file",
    async () => {
      const home = await newHome(false);
      expect(existsSync(home.dir)).toBe(false);
      const r = await ok(home, ["init", "--password-stdin"], { stdin: `${TEST_PASSWORD}\n`, env: NO_PASSWORD_ENV });
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(`initialized ${home.dir}`);
      expect(mode(home.dir)).toBe(0o700);
      expect(mode(vaultFile(home))).toBe(0o600);
      expect(existsSync(keyFile(home))).toBe(false);
      expectPrivateFiles(home);
      const text = readFileSync(vaultFile(home), "utf8");
      expect(text.split("\n")[0]).toBe("agent-vault/v1");
      expect(text).toContain('"alg":"argon2id"');

      // The password it was given opens it; no password or a wrong one does not.
      const list = await ok(home, ["vault", "credential", "list", "--json", "--password-stdin"], { stdin: `${TEST_PASSWORD}\n`, env: NO_PASSWORD_ENV });
      expect(JSON.parse(list.stdout)).toEqual([]);
      expectError(await av(home, ["vault", "credential", "list"], { env: NO_PASSWORD_ENV }), 1, /password/i);
      expectError(await av(home, ["vault", "credential", "list", "--password-stdin"], { stdin: "not the password\n", env: NO_PASSWORD_ENV }), 1, /wrong master password/);
      const vaults = await okJson<VaultView[]>(home, ["vault", "list"]);
      expect(vaults.map((v) => [v.name, v.current])).toEqual([["default", true]]);
    },
    SLOW,
  );

  test(
    "--no-password writes a 0600 key file and warns that it protects nothing from the same user",
    async () => {
      const home = await newHome(false);
      const r = await ok(home, ["init", "--no-password"], { env: NO_PASSWORD_ENV });
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/warning: no master password/);
      expect(r.stderr).toMatch(/protects nothing from a process running as your user/);
      expect(mode(home.dir)).toBe(0o700);
      expect(mode(vaultFile(home))).toBe(0o600);
      expect(mode(keyFile(home))).toBe(0o600);
      expect(readFileSync(keyFile(home), "latin1")).toMatch(/^agent-vault-key\/v1 [A-Za-z0-9+/]{43}=\n$/);
      expectPrivateFiles(home);
      expect(readFileSync(vaultFile(home), "utf8")).toContain('"kdf":{"alg":"none"}');
      // Works without any password source.
      await ok(home, ["vault", "credential", "set", "NP_KEY=np-value"], { env: NO_PASSWORD_ENV });
      expect(await getValue(home, "NP_KEY", [], { env: NO_PASSWORD_ENV })).toBe("np-value");
    },
    SLOW,
  );

  test(
    "init into an existing, group/world-readable directory leaves it 0700 (or refuses)",
    async () => {
      const dir = scratchDir();
      const loose = join(dir, "loose-home");
      mkdirSync(loose);
      chmodSync(loose, 0o755);
      const env = cleanEnv({ AGENT_VAULT_HOME: loose, AGENT_VAULT_INSECURE_TEST_KDF: "1", AGENT_VAULT_MASTER_PASSWORD: undefined });
      const r = await runBinary(["init", "--no-password"], env);
      if (r.code === 0) {
        expect(mode(loose), "the data directory holds the key file; it must not stay 0755").toBe(0o700);
      } else {
        expectError(r, r.code);
        expect(existsSync(join(loose, "vault.av"))).toBe(false);
      }
    },
    SLOW,
  );

  test(
    "a short password is refused with exit 2 and nothing is written",
    async () => {
      const home = await newHome(false);
      expectError(await av(home, ["init", "--password-stdin"], { stdin: "short\n", env: NO_PASSWORD_ENV }), 2, /at least 8 characters/);
      expect(existsSync(vaultFile(home))).toBe(false);
    },
    SLOW,
  );

  test(
    "init twice fails with exit 1 and leaves every byte as it was",
    async () => {
      for (const kind of ["password", "no-password"] as const) {
        const home = await newHome(kind);
        const before = snapshot(home);
        expect(Object.keys(before)).toContain("vault.av");
        expect("vault.key" in before).toBe(kind === "no-password");
        const again = await av(home, ["init"]);
        expectError(again, 1, /already initialized/);
        expect(snapshot(home)).toEqual(before);
        expectError(await av(home, ["init", "--no-password"]), 1, /already initialized/);
        expect(snapshot(home)).toEqual(before);
        expectError(await av(home, ["init", "--password-stdin"], { stdin: "another password\n" }), 1, /already initialized/);
        expect(snapshot(home)).toEqual(before);
      }
    },
    SLOW,
  );
});

// ---------------------------------------------------------------------------------------------

describe("credentials", () => {
  test(
    "set several KEY=VALUE at once; get prints each value; list --json is sorted and shaped",
    async () => {
      const home = await newHome();
      const r = await ok(home, ["vault", "credential", "set", "ZETA=z-value", "ALPHA=a-value", `MIDDLE_1=${CANARY}`, "WITH_EQ=a=b=c"]);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain('stored ZETA, ALPHA, MIDDLE_1, WITH_EQ in vault "default"');
      const values = await Promise.all(["ZETA", "ALPHA", "MIDDLE_1", "WITH_EQ"].map((k) => getValue(home, k)));
      expect(values).toEqual(["z-value", "a-value", CANARY, "a=b=c"]);

      const list = await okJson<CredentialView[]>(home, ["vault", "credential", "list"]);
      expect(list.map((c) => c.key)).toEqual(["ALPHA", "MIDDLE_1", "WITH_EQ", "ZETA"]);
      for (const c of list) {
        expect(Object.keys(c).sort()).toEqual(["created_at", "description", "expires_at", "key", "metadata", "services", "type", "updated_at"]);
        expect(c.type).toBe("static");
        expect(c.description).toBe("");
        expect(c.expires_at).toBeNull();
        expect(c.metadata).toEqual({});
        expect(c.services).toEqual([]);
        expect(c.created_at).toMatch(ISO);
        expect(c.updated_at).toBe(c.created_at);
      }
      // The alias `creds` is the same command.
      expect((await okJson<CredentialView[]>(home, ["vault", "creds", "list"])).map((c) => c.key)).toEqual(list.map((c) => c.key));
      // get --json
      expect(await okJson(home, ["vault", "credential", "get", "ALPHA"])).toEqual({ key: "ALPHA", value: "a-value" });
    },
    SLOW,
  );

  test(
    "list masks values; list --reveal shows them",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", `SECRET_ONE=${CANARY}`, "SECRET_TWO=two-plain-value"]);
      const [masked, maskedJson, revealed, revealedJson] = await Promise.all([
        av(home, ["vault", "credential", "list"]),
        av(home, ["vault", "credential", "list", "--json"]),
        av(home, ["vault", "credential", "list", "--reveal"]),
        av(home, ["vault", "credential", "list", "--reveal", "--json"]),
      ]);
      for (const r of [masked, maskedJson, revealed, revealedJson]) expect(r.code).toBe(0);
      expect(masked.stdout).toMatch(/^KEY\s+TYPE\s+VALUE\s+DESCRIPTION/);
      expect(masked.stdout).toContain("SECRET_ONE");
      expect(masked.stdout).toContain("••••••••");
      for (const r of [masked, maskedJson]) {
        expect(r.stdout + r.stderr).not.toContain(CANARY);
        expect(r.stdout + r.stderr).not.toContain("two-plain-value");
      }
      expect(JSON.parse(maskedJson.stdout).every((c: CredentialView) => !("value" in c))).toBe(true);
      expect(revealed.stdout).toContain(CANARY);
      expect(revealed.stdout).toContain("two-plain-value");
      expect(JSON.parse(revealedJson.stdout).map((c: CredentialView) => [c.key, c.value])).toEqual([
        ["SECRET_ONE", CANARY],
        ["SECRET_TWO", "two-plain-value"],
      ]);
    },
    SLOW,
  );

  test(
    "an empty vault lists as [] and says so on stderr",
    async () => {
      const home = await newHome();
      expect(await okJson(home, ["vault", "credential", "list"])).toEqual([]);
      const r = await ok(home, ["vault", "credential", "list"]);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("has no credentials");
    },
    SLOW,
  );

  test(
    "overwriting keeps created_at, moves updated_at and replaces the value",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "OVER=first", "OTHER=untouched"]);
      const before = await okJson<CredentialView[]>(home, ["vault", "credential", "list"]);
      expect(before.map((c) => c.key)).toEqual(["OTHER", "OVER"]);
      const overBefore = before[1]!;
      expect(overBefore.updated_at).toBe(overBefore.created_at);
      await Bun.sleep(30);
      await ok(home, ["vault", "credential", "set", "OVER=second"]);
      const after = await okJson<CredentialView[]>(home, ["vault", "credential", "list"]);
      expect(after.map((c) => c.key)).toEqual(["OTHER", "OVER"]);
      const [other, over] = [after[0]!, after[1]!];
      expect(over.created_at).toBe(overBefore.created_at);
      expect(Date.parse(over.updated_at)).toBeGreaterThan(Date.parse(overBefore.updated_at));
      expect(other).toEqual(before[0]!);
      expect(await getValue(home, "OVER")).toBe("second");
      expect(await getValue(home, "OTHER")).toBe("untouched");
    },
    SLOW,
  );

  test(
    "KEY=- reads the value from stdin (all of it, minus one trailing newline)",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "FROM_STDIN=-", "INLINE=inline"], { stdin: `line one ${CANARY}\nline two\n` });
      expect(await getValue(home, "FROM_STDIN")).toBe(`line one ${CANARY}\nline two`);
      expect(await getValue(home, "INLINE")).toBe("inline");
      // Empty stdin is an argument error and writes nothing.
      const before = snapshot(home);
      expectError(await av(home, ["vault", "credential", "set", "EMPTY=-"], { stdin: "" }), 2, /stdin/);
      expect(snapshot(home)).toEqual(before);
      // Two KEY=- cannot share stdin.
      expectError(await av(home, ["vault", "credential", "set", "X1=-", "X2=-"], { stdin: "v\n" }), 2, /only one KEY=-/);
      expect(snapshot(home)).toEqual(before);
    },
    SLOW,
  );

  test(
    "with --password-stdin the first stdin line is the password and the rest the value",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "PIPED=-", "--password-stdin"], { stdin: `${TEST_PASSWORD}\n${CANARY}\nsecond line\n`, env: NO_PASSWORD_ENV });
      expect(await getValue(home, "PIPED")).toBe(`${CANARY}\nsecond line`);
      // A wrong first line is a wrong password, not part of a value, and nothing is written.
      const before = snapshot(home);
      expectError(await av(home, ["vault", "credential", "set", "PIPED=-", "--password-stdin"], { stdin: `wrong password\n${CANARY}\n`, env: NO_PASSWORD_ENV }), 1, /wrong master password/);
      expect(snapshot(home)).toEqual(before);
      // Only the password line and no value: refused, nothing written.
      expectError(await av(home, ["vault", "credential", "set", "PIPED=-", "--password-stdin"], { stdin: `${TEST_PASSWORD}\n`, env: NO_PASSWORD_ENV }), 2, /stdin/);
      expect(snapshot(home)).toEqual(before);
      expect(await getValue(home, "PIPED")).toBe(`${CANARY}\nsecond line`);
    },
    SLOW,
  );

  test(
    "--password-stdin always takes the first line as the password, even when the vault has none",
    async () => {
      // A script written for a password-protected vault pipes "password\nvalue". Against a
      // --no-password vault the first line must still be consumed as the password (and ignored),
      // never stored as part of the value.
      const home = await newHome("no-password");
      await ok(home, ["vault", "credential", "set", "PIPED_NP=-", "--password-stdin"], { stdin: `${TEST_PASSWORD}\nthe-value\n`, env: NO_PASSWORD_ENV });
      expect(await getValue(home, "PIPED_NP", [], { env: NO_PASSWORD_ENV })).toBe("the-value");
    },
    SLOW,
  );

  test(
    "delete several at once; all or none when one is missing",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "DA=1", "DB=2", "DC=3", "DD=4"]);
      const r = await ok(home, ["vault", "credential", "delete", "DA", "DB"]);
      expect(r.stderr).toContain('deleted DA, DB from vault "default"');
      expect((await okJson<CredentialView[]>(home, ["vault", "credential", "list"])).map((c) => c.key)).toEqual(["DC", "DD"]);

      const before = snapshot(home);
      const missing = await av(home, ["vault", "credential", "delete", "DC", "MISSING_KEY"]);
      const { message } = expectError(missing, 1, /MISSING_KEY/);
      expect(message).not.toMatch(/\bDC\b/);
      expect(snapshot(home)).toEqual(before);
      expect((await okJson<CredentialView[]>(home, ["vault", "credential", "list"])).map((c) => c.key)).toEqual(["DC", "DD"]);
      expect(await getValue(home, "DC")).toBe("3");

      expectError(await av(home, ["vault", "credential", "get", "DA"]), 1, /no credential DA in vault "default"/);
    },
    SLOW,
  );

  test(
    "--description, --expires-in and --meta show in list --json and survive an overwrite",
    async () => {
      const home = await newHome();
      const start = Date.now();
      await ok(home, ["vault", "credential", "set", "META_KEY=m1", "--description", "the deploy token", "--expires-in", "30d", "--meta", "owner=alice", "--meta", "team=ops=core"]);
      const end = Date.now();
      const [c] = await okJson<CredentialView[]>(home, ["vault", "credential", "list"]);
      expect(c!.key).toBe("META_KEY");
      expect(c!.description).toBe("the deploy token");
      expect(c!.metadata).toEqual({ owner: "alice", team: "ops=core" });
      const expires = Date.parse(c!.expires_at!);
      const thirtyDays = 30 * 86_400_000;
      expect(expires).toBeGreaterThanOrEqual(start + thirtyDays - 1000);
      expect(expires).toBeLessThanOrEqual(end + thirtyDays + 1000);
      const table = await ok(home, ["vault", "credential", "list"]);
      expect(table.stdout).toContain("the deploy token");
      expect(table.stdout).toContain("in 30d");

      // A plain overwrite keeps the metadata; a new --meta merges.
      await ok(home, ["vault", "credential", "set", "META_KEY=m2", "--meta", "owner=bob"]);
      const [d] = await okJson<CredentialView[]>(home, ["vault", "credential", "list"]);
      expect(d!.description).toBe("the deploy token");
      expect(d!.expires_at).toBe(c!.expires_at);
      expect(d!.metadata).toEqual({ owner: "bob", team: "ops=core" });
      expect(await getValue(home, "META_KEY")).toBe("m2");

      // --expires-in never clears it; a bad duration is a usage error and writes nothing.
      await ok(home, ["vault", "credential", "set", "META_KEY=m3", "--expires-in", "never"]);
      expect((await okJson<CredentialView[]>(home, ["vault", "credential", "list"]))[0]!.expires_at).toBeNull();
      const before = snapshot(home);
      expectError(await av(home, ["vault", "credential", "set", "META_KEY=m4", "--expires-in", "soon"]), 2, /--expires-in "soon"/);
      expectError(await av(home, ["vault", "credential", "set", "META_KEY=m4", "--meta", "novalue"]), 2, /--meta/);
      expect(snapshot(home)).toEqual(before);
    },
    SLOW,
  );

  test(
    "a sealed value is not on disk in any readable form",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", `DISK_CANARY=${CANARY}`]);
      await ok(home, ["vault", "credential", "set", "FROM_STDIN_CANARY=-"], { stdin: `${CANARY}\n` });
      await ok(home, ["vault", "create", "second"]);
      await ok(home, ["vault", "credential", "set", `DISK_CANARY=${CANARY}`, "--vault", "second"]);
      expect(await getValue(home, "DISK_CANARY", ["--vault", "second"])).toBe(CANARY);
      const forms = [CANARY, Buffer.from(CANARY).toString("base64"), Buffer.from(CANARY).toString("hex"), CANARY.slice("canary-".length)];
      for (const name of readdirSync(home.dir)) {
        const path = join(home.dir, name);
        if (statSync(path).isDirectory()) continue;
        const bytes = readFileSync(path);
        for (const form of forms) expect(bytes.includes(Buffer.from(form)), `${name} contains ${form}`).toBe(false);
      }
      // The key names are in clear (authenticated metadata), the values are not.
      expect(readFileSync(vaultFile(home), "utf8")).toContain('"DISK_CANARY"');
    },
    SLOW,
  );
});

// ---------------------------------------------------------------------------------------------

describe("vaults", () => {
  test(
    "create, list, use, current, rename, delete; credentials are per vault",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "SHARED_NAME=in-default"]);
      const created = await ok(home, ["vault", "create", "work"]);
      expect(created.stderr).toContain('created vault "work"');
      expectError(await av(home, ["vault", "create", "work"]), 1, /already exists/);
      expectError(await av(home, ["vault", "create", "Bad_Name"]), 2, /invalid vault name "Bad_Name"/);

      let vaults = await okJson<VaultView[]>(home, ["vault", "list"]);
      expect(vaults.map((v) => ({ name: v.name, current: v.current, credentials: v.credentials, services: v.services, unmatched: v.unmatched }))).toEqual([
        { name: "default", current: true, credentials: 1, services: 0, unmatched: "passthrough" },
        { name: "work", current: false, credentials: 0, services: 0, unmatched: "passthrough" },
      ]);
      const table = await ok(home, ["vault", "list"]);
      expect(table.stdout).toMatch(/^\*\s+default\s+1\s+0\s+passthrough/m);
      expect(table.stdout).toMatch(/^\s+work\s+0\s+0\s+passthrough/m);

      expect((await ok(home, ["vault", "current"])).stdout).toBe("default\n");
      await ok(home, ["vault", "use", "work"]);
      expect((await ok(home, ["vault", "current"])).stdout).toBe("work\n");
      expect(await okJson(home, ["vault", "current"])).toEqual({ vault: "work", source: "current" });

      // Credentials are per vault: the same key holds different values.
      await ok(home, ["vault", "credential", "set", "SHARED_NAME=in-work", "ONLY_WORK=w"]);
      expect(await getValue(home, "SHARED_NAME")).toBe("in-work");
      expect(await getValue(home, "SHARED_NAME", ["--vault", "default"])).toBe("in-default");
      expect(await getValue(home, "SHARED_NAME", [], { env: { AGENT_VAULT_VAULT: "default" } })).toBe("in-default");
      // --vault beats AGENT_VAULT_VAULT, which beats the current vault.
      expect(await getValue(home, "SHARED_NAME", ["--vault", "work"], { env: { AGENT_VAULT_VAULT: "default" } })).toBe("in-work");
      expect(await okJson(home, ["vault", "current"], { env: { AGENT_VAULT_VAULT: "default" } })).toEqual({ vault: "default", source: "AGENT_VAULT_VAULT" });
      expect(await okJson(home, ["vault", "current", "--vault", "default"], { env: { AGENT_VAULT_VAULT: "work" } })).toEqual({ vault: "default", source: "--vault" });
      expectError(await av(home, ["vault", "credential", "get", "ONLY_WORK", "--vault", "default"]), 1, /no credential ONLY_WORK in vault "default"/);
      expect((await okJson<CredentialView[]>(home, ["vault", "credential", "list", "--vault", "default"])).map((c) => c.key)).toEqual(["SHARED_NAME"]);
      expect((await okJson<CredentialView[]>(home, ["vault", "credential", "list"], { env: { AGENT_VAULT_VAULT: "work" } })).map((c) => c.key)).toEqual(["ONLY_WORK", "SHARED_NAME"]);

      // Rename: the current vault follows, values still open (vault ids never change).
      const renamed = await ok(home, ["vault", "rename", "work", "job"]);
      expect(renamed.stderr).toContain('renamed vault "work" to "job"');
      expect((await ok(home, ["vault", "current"])).stdout).toBe("job\n");
      expect(await getValue(home, "ONLY_WORK", ["--vault", "job"])).toBe("w");
      expect(await getValue(home, "SHARED_NAME")).toBe("in-work");
      const gone = expectError(await av(home, ["vault", "credential", "list", "--vault", "work"]), 1, /no vault named "work"/);
      expect(gone.hint).toContain("agent-vault vault list");
      expectError(await av(home, ["vault", "rename", "job", "default"]), 1, /already exists/);

      // Delete asks; without a terminal and without --yes it refuses and changes nothing.
      const before = snapshot(home);
      const refused = expectError(await av(home, ["vault", "delete", "job"]), 1, /not deleted/);
      expect(refused.hint).toContain("--yes");
      expect(snapshot(home)).toEqual(before);
      const deleted = await ok(home, ["vault", "delete", "job", "--yes"]);
      expect(deleted.stderr).toContain('deleted vault "job"');
      vaults = await okJson<VaultView[]>(home, ["vault", "list"]);
      expect(vaults.map((v) => [v.name, v.current])).toEqual([["default", true]]);
      expect((await ok(home, ["vault", "current"])).stdout).toBe("default\n");
      expect(await getValue(home, "SHARED_NAME")).toBe("in-default");
      // The last vault cannot go.
      expectError(await av(home, ["vault", "delete", "default", "--yes"]), 1, /only vault/);
      // A recreated "job" starts empty.
      await ok(home, ["vault", "create", "job"]);
      expect(await okJson(home, ["vault", "credential", "list", "--vault", "job"])).toEqual([]);
    },
    SLOW,
  );

  test(
    "an unknown vault, from --vault or AGENT_VAULT_VAULT, is exit 1 naming the vault, with a hint",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "K=v"]);
      const before = snapshot(home);
      const cases: [readonly string[], Record<string, string> | undefined][] = [
        [["vault", "credential", "list", "--vault", "nope-vault"], undefined],
        [["vault", "credential", "set", "K=changed", "--vault", "nope-vault"], undefined],
        [["vault", "credential", "get", "K"], { AGENT_VAULT_VAULT: "nope-vault" }],
        [["vault", "service", "list"], { AGENT_VAULT_VAULT: "nope-vault" }],
        [["vault", "current"], { AGENT_VAULT_VAULT: "nope-vault" }],
        [["vault", "use", "nope-vault"], undefined],
        [["vault", "delete", "nope-vault", "--yes"], undefined],
        [["vault", "settings", "--unmatched", "deny", "--vault", "nope-vault"], undefined],
      ];
      const results = await Promise.all(cases.map(([args, env]) => av(home, args, env ? { env } : {})));
      for (const r of results) {
        const { hint } = expectError(r, 1, /no vault named "nope-vault"/);
        expect(hint).toBe("list vaults with `agent-vault vault list`");
      }
      expect(snapshot(home)).toEqual(before);
      expect(await getValue(home, "K")).toBe("v");
    },
    SLOW,
  );

  test(
    "settings: --unmatched, --guard, --scrub and --guard-bypass, per vault; bad values are exit 2",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "create", "other"]);
      const fresh = { guard: true, scrub: true, guard_bypass: [] };
      expect(await okJson(home, ["vault", "settings"])).toEqual({ vault: "default", unmatched: "passthrough", ...fresh });
      const table = await ok(home, ["vault", "settings"]);
      expect(table.stdout).toMatch(/^unmatched\s+passthrough$/m);
      expect(table.stdout).toMatch(/^guard\s+on$/m);
      expect(table.stdout).toMatch(/^scrub\s+on$/m);
      expect(await okJson(home, ["vault", "settings", "--unmatched", "deny"])).toEqual({ vault: "default", unmatched: "deny", ...fresh });
      expect(await okJson(home, ["vault", "settings"])).toEqual({ vault: "default", unmatched: "deny", ...fresh });
      expect(await okJson(home, ["vault", "settings", "--vault", "other"])).toEqual({ vault: "other", unmatched: "passthrough", ...fresh });
      const vaults = await okJson<VaultView[]>(home, ["vault", "list"]);
      expect(vaults.map((v) => [v.name, v.unmatched])).toEqual([
        ["default", "deny"],
        ["other", "passthrough"],
      ]);
      expect(await okJson(home, ["vault", "settings", "--vault", "other", "--unmatched", "guard", "--guard-bypass", "pinned.example.com,*.bank.example", "--scrub", "off"])).toEqual({
        vault: "other",
        unmatched: "guard",
        guard: true,
        scrub: false,
        guard_bypass: ["pinned.example.com", "*.bank.example"],
      });
      expect(await okJson(home, ["vault", "settings", "--vault", "other", "--guard", "off", "--guard-bypass", ""])).toMatchObject({ guard: false, guard_bypass: [] });

      const before = snapshot(home);
      expectError(await av(home, ["vault", "settings", "--unmatched", "allow-all"]), 2, /--unmatched must be passthrough, deny or guard, not "allow-all"/);
      expectError(await av(home, ["vault", "settings", "--unmatched"]), 2, /argument missing/);
      expectError(await av(home, ["vault", "settings", "--guard", "maybe"]), 2, /--guard must be on or off, not "maybe"/);
      expectError(await av(home, ["vault", "settings", "--guard-bypass", "not a host"]), 2, /--guard-bypass: "not a host" is not a host name/);
      expect(snapshot(home)).toEqual(before);

      expect(await okJson(home, ["vault", "settings", "--unmatched", "passthrough"])).toEqual({ vault: "default", unmatched: "passthrough", ...fresh });
    },
    SLOW,
  );
});

// ---------------------------------------------------------------------------------------------

describe("services", () => {
  const KEYS = ["TOK", "USER_NAME", "USER_PASS", "API_KEY", "SECOND_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"];

  async function serviceHome(): Promise<TempHome> {
    const home = await newHome();
    await ok(home, ["vault", "credential", "set", ...KEYS.map((k) => `${k}=${CANARY}-${k.toLowerCase()}`)]);
    return home;
  }

  async function services(home: TempHome, extra: readonly string[] = []): Promise<ServiceView[]> {
    return okJson<ServiceView[]>(home, ["vault", "service", "list", ...extra]);
  }

  /** A service as listed, minus created_at (checked to be an ISO time). */
  function strip(s: ServiceView): Omit<ServiceView, "created_at"> {
    expect(s.created_at).toMatch(ISO);
    const { created_at: _, ...rest } = s;
    return rest;
  }

  test(
    "add stores every auth type exactly as given",
    async () => {
      const home = await serviceHome();
      const add = (...args: string[]) => ok(home, ["vault", "service", "add", ...args]);
      const bearer = await ok(home, ["vault", "service", "add", "--name", "bearer-svc", "--host", "api.bearer.example", "--auth-type", "bearer", "--token-key", "TOK", "--json"]);
      expect(strip(JSON.parse(bearer.stdout))).toEqual({ name: "bearer-svc", host: "api.bearer.example", auth: { type: "bearer", token: "TOK" }, enabled: true });
      const basic = await add("--name", "basic-svc", "--host", "api.basic.example", "--auth-type", "basic", "--username-key", "USER_NAME", "--password-key", "USER_PASS");
      expect(basic.stderr).toContain('added service "basic-svc" for api.basic.example (basic) to vault "default"');
      await add("--name", "basic-user-only", "--host", "api.basic2.example", "--auth-type", "basic", "--username-key", "USER_NAME");
      await add("--name", "apikey-svc", "--host", "api.key.example:8443", "--auth-type", "api-key", "--key", "API_KEY", "--header", "X-Api-Key", "--prefix", "Token ");
      await add("--name", "apikey-default", "--host", "API.Key2.Example", "--auth-type", "api-key", "--key", "API_KEY");
      await add("--name", "custom-svc", "--host", "*.custom.example", "--auth-type", "custom", "--header", "X-One: a {{ API_KEY }}", "--header", "X-Two: {{SECOND_KEY}} b");
      await add("--name", "query-svc", "--host", "query.example/api/*", "--auth-type", "query", "--param", "api_key", "--key", "API_KEY");
      await add("--name", "pass-svc", "--host", "pass.example", "--auth-type", "passthrough", "--description", "no auth at all");

      const listed = (await services(home)).map(strip);
      expect(listed).toEqual([
        { name: "bearer-svc", host: "api.bearer.example", auth: { type: "bearer", token: "TOK" }, enabled: true },
        { name: "basic-svc", host: "api.basic.example", auth: { type: "basic", username: "USER_NAME", password: "USER_PASS" }, enabled: true },
        { name: "basic-user-only", host: "api.basic2.example", auth: { type: "basic", username: "USER_NAME" }, enabled: true },
        { name: "apikey-svc", host: "api.key.example:8443", auth: { type: "api-key", key: "API_KEY", header: "X-Api-Key", prefix: "Token " }, enabled: true },
        { name: "apikey-default", host: "api.key2.example", auth: { type: "api-key", key: "API_KEY", header: "Authorization", prefix: "" }, enabled: true },
        { name: "custom-svc", host: "*.custom.example", auth: { type: "custom", headers: { "X-One": "a {{ API_KEY }}", "X-Two": "{{SECOND_KEY}} b" } }, enabled: true },
        { name: "query-svc", host: "query.example/api/*", auth: { type: "query", param: "api_key", key: "API_KEY" }, enabled: true },
        { name: "pass-svc", host: "pass.example", auth: { type: "passthrough" }, enabled: true, description: "no auth at all" },
      ]);
      // toEqual ignores undefined; be exact about the optional password.
      expect("password" in listed[2]!.auth).toBe(false);

      // Wide enough that nothing is cut (at 80 columns the AUTH column gives way: test/e2e/cli-output.test.ts).
      const table = await ok(home, ["vault", "service", "list"], { env: { COLUMNS: "200" } });
      expect(table.stdout).toMatch(/^apikey-svc\s+api\.key\.example:8443\s+api-key \(X-Api-Key\)\s+API_KEY\s+yes$/m);
      expect(table.stdout).toMatch(/^custom-svc\s+\*\.custom\.example\s+custom \(X-One, X-Two\)\s+API_KEY,SECOND_KEY\s+yes$/m);
      expect(table.stdout).toMatch(/^pass-svc\s+pass\.example\s+passthrough\s+-\s+yes$/m);

      // Credentials know which services use them.
      const creds = await okJson<CredentialView[]>(home, ["vault", "credential", "list"]);
      expect(creds.find((c) => c.key === "API_KEY")!.services).toEqual(["apikey-svc", "apikey-default", "custom-svc", "query-svc"]);
      expect(creds.find((c) => c.key === "USER_PASS")!.services).toEqual(["basic-svc"]);
      expect(creds.find((c) => c.key === "OPENAI_API_KEY")!.services).toEqual([]);

      // Deleting a credential a service uses works, with a warning naming the service.
      const del = await ok(home, ["vault", "credential", "delete", "TOK"]);
      expect(del.stderr).toMatch(/warning: service bearer-svc still uses TOK/);
    },
    SLOW,
  );

  test(
    "--template fills host and auth from the catalog; flags override",
    async () => {
      const home = await serviceHome();
      const openai = await ok(home, ["vault", "service", "add", "--template", "openai", "--json"]);
      expect(strip(JSON.parse(openai.stdout))).toEqual({
        name: "openai",
        host: "api.openai.com",
        auth: { type: "bearer", token: "OPENAI_API_KEY" },
        enabled: true,
        description: "OpenAI",
      });
      await ok(home, ["vault", "service", "add", "--template", "anthropic"]);
      await ok(home, ["vault", "service", "add", "--template", "openai", "--name", "openai-2", "--token-key", "TOK", "--host", "eu.openai.example"]);
      expect((await services(home)).map(strip)).toEqual([
        { name: "openai", host: "api.openai.com", auth: { type: "bearer", token: "OPENAI_API_KEY" }, enabled: true, description: "OpenAI" },
        { name: "anthropic", host: "api.anthropic.com", auth: { type: "api-key", key: "ANTHROPIC_API_KEY", header: "x-api-key", prefix: "" }, enabled: true, description: "Anthropic" },
        { name: "openai-2", host: "eu.openai.example", auth: { type: "bearer", token: "TOK" }, enabled: true, description: "OpenAI" },
      ]);
      const before = snapshot(home);
      expectError(await av(home, ["vault", "service", "add", "--template", "openai"]), 1, /already has a service "openai"/);
      const unknown = expectError(await av(home, ["vault", "service", "add", "--template", "no-such-template"]), 1, /no catalog template "no-such-template"/);
      expect(unknown.hint).toContain("agent-vault catalog");
      // The template's credential must exist in the vault.
      expectError(await av(home, ["vault", "service", "add", "--template", "github"]), 1, /GITHUB_TOKEN/);
      expectError(await av(home, ["vault", "service", "add", "--template", "openai", "--name", "x", "--auth-type", "basic"]), 2, /template openai uses --auth-type bearer/);
      expect(snapshot(home)).toEqual(before);
    },
    SLOW,
  );

  test(
    "enable, disable and remove",
    async () => {
      const home = await serviceHome();
      await ok(home, ["vault", "service", "add", "--name", "toggle", "--host", "toggle.example", "--auth-type", "bearer", "--token-key", "TOK"]);
      await ok(home, ["vault", "service", "add", "--name", "keep", "--host", "keep.example", "--auth-type", "passthrough", "--disabled"]);
      expect((await services(home)).map((s) => [s.name, s.enabled])).toEqual([
        ["toggle", true],
        ["keep", false],
      ]);
      expect((await ok(home, ["vault", "service", "disable", "toggle"])).stderr).toContain('disabled service "toggle"');
      expect((await services(home)).map((s) => [s.name, s.enabled])).toEqual([
        ["toggle", false],
        ["keep", false],
      ]);
      expect((await ok(home, ["vault", "service", "list"])).stdout).toMatch(/^toggle\s+toggle\.example\s+bearer\s+TOK\s+no$/m);
      await ok(home, ["vault", "service", "enable", "toggle"]);
      await ok(home, ["vault", "service", "enable", "keep"]);
      expect((await services(home)).map((s) => [s.name, s.enabled])).toEqual([
        ["toggle", true],
        ["keep", true],
      ]);
      expect((await ok(home, ["vault", "service", "remove", "toggle"])).stderr).toContain('removed service "toggle" from vault "default"');
      expect((await services(home)).map((s) => s.name)).toEqual(["keep"]);
      const before = snapshot(home);
      for (const verb of ["remove", "enable", "disable"]) {
        const { hint } = expectError(await av(home, ["vault", "service", verb, "toggle"]), 1, /no service "toggle" in vault "default"/);
        expect(hint).toContain("agent-vault vault service list");
      }
      expect(snapshot(home)).toEqual(before);
      // Services are per vault too.
      await ok(home, ["vault", "create", "other"]);
      expect(await services(home, ["--vault", "other"])).toEqual([]);
      const empty = await ok(home, ["vault", "service", "list", "--vault", "other"]);
      expect(empty.stdout).toBe("");
      expect(empty.stderr).toContain("has no services");
    },
    SLOW,
  );

  test(
    "set -f with a JSON file and with a YAML file; --replace makes the file the whole list",
    async () => {
      const home = await serviceHome();
      const dir = scratchDir();
      await ok(home, ["vault", "service", "add", "--name", "existing", "--host", "existing.example", "--auth-type", "bearer", "--token-key", "TOK"]);
      const [existing] = await services(home);

      const jsonFile = join(dir, "services.json");
      writeFileSync(
        jsonFile,
        JSON.stringify([
          { name: "from-json", host: "json.example", auth: { type: "bearer", token: "TOK" } },
          { name: "existing", host: "existing2.example", auth: { type: "query", param: "k", key: "API_KEY" }, enabled: false },
        ]),
      );
      expect(await okJson(home, ["vault", "service", "set", "-f", jsonFile])).toEqual({ added: ["from-json"], updated: ["existing"], removed: [] });
      let listed = await services(home);
      expect(listed.map(strip)).toEqual([
        { name: "existing", host: "existing2.example", auth: { type: "query", param: "k", key: "API_KEY" }, enabled: false },
        { name: "from-json", host: "json.example", auth: { type: "bearer", token: "TOK" }, enabled: true },
      ]);
      expect(listed[0]!.created_at).toBe(existing!.created_at);

      const yamlFile = join(dir, "services.yaml");
      writeFileSync(
        yamlFile,
        [
          "services:",
          "  - name: from-yaml",
          "    host: '*.yaml.example'",
          "    auth:",
          "      type: custom",
          "      headers:",
          "        X-Yaml: 'k={{ SECOND_KEY }}'",
          "  - name: from-json",
          "    host: json.example",
          "    auth: { type: basic, username: USER_NAME, password: USER_PASS }",
          "",
        ].join("\n"),
      );
      const yamlRun = await ok(home, ["vault", "service", "set", "--file", yamlFile]);
      expect(yamlRun.stderr).toContain('vault "default": 1 added, 1 updated, 0 removed');
      listed = await services(home);
      expect(listed.map(strip)).toEqual([
        { name: "existing", host: "existing2.example", auth: { type: "query", param: "k", key: "API_KEY" }, enabled: false },
        { name: "from-json", host: "json.example", auth: { type: "basic", username: "USER_NAME", password: "USER_PASS" }, enabled: true },
        { name: "from-yaml", host: "*.yaml.example", auth: { type: "custom", headers: { "X-Yaml": "k={{ SECOND_KEY }}" } }, enabled: true },
      ]);

      const replaceFile = join(dir, "replace.yml");
      writeFileSync(replaceFile, "- name: only-one\n  host: only.example\n  auth:\n    type: passthrough\n");
      expect(await okJson(home, ["vault", "service", "set", "-f", replaceFile, "--replace"])).toEqual({
        added: ["only-one"],
        updated: [],
        removed: ["existing", "from-json", "from-yaml"],
      });
      expect((await services(home)).map(strip)).toEqual([{ name: "only-one", host: "only.example", auth: { type: "passthrough" }, enabled: true }]);

      // Bad files change nothing.
      const before = snapshot(home);
      const missingKey = join(dir, "missing-key.json");
      writeFileSync(missingKey, JSON.stringify({ services: [{ name: "m", host: "m.example", auth: { type: "bearer", token: "NOT_IN_VAULT" } }] }));
      expectError(await av(home, ["vault", "service", "set", "-f", missingKey, "--replace"]), 1, /NOT_IN_VAULT/);
      const badHost = join(dir, "bad-host.json");
      writeFileSync(badHost, JSON.stringify([{ name: "b", host: "https://b.example", auth: { type: "passthrough" } }]));
      expectError(await av(home, ["vault", "service", "set", "-f", badHost]), 2, /services\[0\].*host/);
      const notJson = join(dir, "broken.json");
      writeFileSync(notJson, "{ not json");
      expectError(await av(home, ["vault", "service", "set", "-f", notJson]), 2, /not valid JSON/);
      const unknownField = join(dir, "unknown-field.json");
      writeFileSync(unknownField, JSON.stringify([{ name: "u", host: "u.example", auth: { type: "passthrough" }, secret: "x" }]));
      expectError(await av(home, ["vault", "service", "set", "-f", unknownField]), 2, /services\[0\]/);
      expectError(await av(home, ["vault", "service", "set", "-f", join(dir, "does-not-exist.json")]), 2, /cannot read/);
      expectError(await av(home, ["vault", "service", "set"]), 2, /--file/);
      expect(snapshot(home)).toEqual(before);
    },
    SLOW,
  );

  test(
    "bad service input is refused and changes nothing",
    async () => {
      const home = await serviceHome();
      const before = snapshot(home);
      const add = (...args: string[]) => av(home, ["vault", "service", "add", "--name", "bad", ...args]);
      const cases: [Promise<RunResult>, number, RegExp][] = [
        [add("--host", "evil..com", "--auth-type", "passthrough"), 2, /host: "evil\.\.com" is not a valid host name/],
        [add("--host", "*.com", "--auth-type", "passthrough"), 2, /host: a wildcard host must be/],
        [add("--host", "a.com:99999", "--auth-type", "passthrough"), 2, /host: port "99999"/],
        [add("--host", "https://a.com", "--auth-type", "passthrough"), 2, /host: host must not include a scheme/],
        [add("--host", "api.github.com.", "--auth-type", "passthrough"), 2, /host: host must not end with a dot/],
        [add("--host", "user@a.com", "--auth-type", "passthrough"), 2, /user info/],
        [add("--host", "a.com", "--auth-type", "bearer", "--token-key", "UNKNOWN_KEY"), 1, /uses UNKNOWN_KEY, which vault "default" does not have/],
        [add("--host", "a.com", "--auth-type", "bearer", "--token-key", "lower_key"), 2, /auth\.token/],
        [add("--host", "a.com", "--auth-type", "custom", "--header", "X-A: {{ NOT_THERE }}"), 1, /NOT_THERE/],
        [add("--host", "a.com", "--auth-type", "custom", "--header", "X-A no colon"), 2, /--header/],
        [add("--host", "a.com", "--auth-type", "custom", "--header", "Host: {{ TOK }}"), 2, /auth\.headers\.Host/],
        [add("--host", "a.com", "--auth-type", "bearer"), 2, /needs --token-key/],
        [add("--host", "a.com", "--auth-type", "bearer", "--token-key", "TOK", "--param", "p"), 2, /--param does not apply/],
        [add("--host", "a.com", "--auth-type", "oauth2"), 2, /--auth-type must be one of/],
        [add("--host", "a.com"), 2, /needs --auth-type/],
        [av(home, ["vault", "service", "add", "--name", "Bad Name", "--host", "a.com", "--auth-type", "passthrough"]), 2, /name/],
      ];
      const results = await Promise.all(cases.map(([p]) => p));
      results.forEach((r, i) => expectError(r, cases[i]![1], cases[i]![2]));
      const unknown = expectError(results[6]!, 1);
      expect(unknown.hint).toContain("agent-vault vault credential set UNKNOWN_KEY=-");
      expect(snapshot(home)).toEqual(before);
      expect(await services(home)).toEqual([]);
    },
    SLOW,
  );
});

// ---------------------------------------------------------------------------------------------

describe("service messages", () => {
  test(
    "a reserved header in a custom service is refused with a message that says why",
    async () => {
      // service.schema.ts gives reserved header names the message "this header cannot be set by a
      // service"; the user should see it rather than a generic validation text.
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "TOK=t"]);
      const r = await av(home, ["vault", "service", "add", "--name", "bad", "--host", "a.com", "--auth-type", "custom", "--header", "Host: {{ TOK }}"]);
      expectError(r, 2, /Host.*cannot be set by a service/);
    },
    SLOW,
  );
});

describe("catalog", () => {
  test(
    "lists at least 30 templates, with and without --json, even before init",
    async () => {
      const home = await newHome(false);
      const [json, table] = await Promise.all([av(home, ["catalog", "--json"]), av(home, ["catalog"])]);
      expect(json.code).toBe(0);
      expect(table.code).toBe(0);
      const entries = JSON.parse(json.stdout) as { name: string; title: string; host: string; auth: { type: string } }[];
      expect(entries.length).toBeGreaterThanOrEqual(30);
      expect(new Set(entries.map((e) => e.name)).size).toBe(entries.length);
      for (const e of entries) {
        expect(e.name).toMatch(/^[a-z0-9][a-z0-9_-]*$/);
        expect(e.host.length).toBeGreaterThan(0);
        expect(["bearer", "basic", "api-key", "custom", "query", "passthrough", "aws-sigv4"]).toContain(e.auth.type);
      }
      expect(entries.find((e) => e.name === "openai")).toMatchObject({ host: "api.openai.com", auth: { type: "bearer", token: "OPENAI_API_KEY" } });
      expect(entries.find((e) => e.name === "anthropic")).toMatchObject({ host: "api.anthropic.com", auth: { type: "api-key", key: "ANTHROPIC_API_KEY", header: "x-api-key" } });
      expect(table.stdout).toMatch(/^TEMPLATE\s+SERVICE\s+HOST\s+AUTH\s+CREDENTIALS$/m);
      expect(table.stdout.trimEnd().split("\n").length).toBe(entries.length + 1);
      expect(existsSync(home.dir)).toBe(false);
    },
    SLOW,
  );
});

// ---------------------------------------------------------------------------------------------

describe("master-password", () => {
  test(
    "change, remove and set; values survive every step",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", `MP_SECRET=${CANARY}`, "MP_OTHER=other"]);
      const NEW = "a brand new password";
      const THIRD = "the third password";

      // change: old password stops working, new one works.
      const changed = await ok(home, ["master-password", "change", "--password-stdin", "--new-password-stdin"], { stdin: `${TEST_PASSWORD}\n${NEW}\n`, env: NO_PASSWORD_ENV });
      expect(changed.stderr).toContain("master password changed");
      expect(mode(vaultFile(home))).toBe(0o600);
      expectError(await av(home, ["vault", "credential", "get", "MP_SECRET"]), 1, /wrong master password/);
      expect(await getValue(home, "MP_SECRET", [], { env: { AGENT_VAULT_MASTER_PASSWORD: NEW } })).toBe(CANARY);
      const NEW_ENV = { AGENT_VAULT_MASTER_PASSWORD: NEW };

      // change refuses a short password, and without --new-password-stdin there is no terminal to ask.
      let before = snapshot(home);
      expectError(await av(home, ["master-password", "change", "--new-password-stdin"], { stdin: "short\n", env: NEW_ENV }), 2, /at least 8 characters/);
      expectError(await av(home, ["master-password", "change"], { env: NEW_ENV }), 1, /no terminal/);
      expectError(await av(home, ["master-password", "set", "--new-password-stdin"], { stdin: "whatever-long\n", env: NEW_ENV }), 1, /already has a master password/);
      expect(snapshot(home)).toEqual(before);

      // remove: the key file appears, no password is needed.
      const removed = await ok(home, ["master-password", "remove"], { env: NEW_ENV });
      expect(removed.stderr).toMatch(/protects nothing/);
      expect(mode(keyFile(home))).toBe(0o600);
      expect(mode(vaultFile(home))).toBe(0o600);
      expect(readFileSync(vaultFile(home), "utf8")).toContain('"kdf":{"alg":"none"}');
      expectPrivateFiles(home);
      expect(await getValue(home, "MP_SECRET", [], { env: NO_PASSWORD_ENV })).toBe(CANARY);
      expect(await getValue(home, "MP_OTHER", [], { env: { AGENT_VAULT_MASTER_PASSWORD: "anything at all" } })).toBe("other");
      before = snapshot(home);
      expectError(await av(home, ["master-password", "remove"], { env: NO_PASSWORD_ENV }), 1, /no master password/);
      expectError(await av(home, ["master-password", "change", "--new-password-stdin"], { stdin: `${THIRD}\n`, env: NO_PASSWORD_ENV }), 1, /no master password/);
      expect(snapshot(home)).toEqual(before);

      // set: the key file goes, a password is required again.
      const set = await ok(home, ["master-password", "set", "--new-password-stdin"], { stdin: `${THIRD}\n`, env: NO_PASSWORD_ENV });
      expect(set.stderr).toContain("master password set");
      expect(existsSync(keyFile(home))).toBe(false);
      expect(readFileSync(vaultFile(home), "utf8")).toContain('"alg":"argon2id"');
      expectPrivateFiles(home);
      const required = expectError(await av(home, ["vault", "credential", "get", "MP_SECRET"], { env: NO_PASSWORD_ENV }), 1, /password is needed/i);
      expect(required.hint).toContain("AGENT_VAULT_MASTER_PASSWORD");
      expectError(await av(home, ["vault", "credential", "get", "MP_SECRET"], { env: NEW_ENV }), 1, /wrong master password/);
      expect(await getValue(home, "MP_SECRET", [], { env: { AGENT_VAULT_MASTER_PASSWORD: THIRD } })).toBe(CANARY);
      expect(await getValue(home, "MP_OTHER", [], { env: { AGENT_VAULT_MASTER_PASSWORD: THIRD } })).toBe("other");
    },
    SLOW,
  );
});

// ---------------------------------------------------------------------------------------------

describe("bad input", () => {
  test(
    "each refusal is one error line (+ hint), the right exit code, no stack trace, and no change on disk",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "EXISTING=kept", "TOK=t"]);
      const before = snapshot(home);
      const cases: { args: string[]; exit: number; message: RegExp; stdin?: string; env?: Record<string, string | undefined> }[] = [
        { args: ["vault", "credential", "set", "lowercase=x"], exit: 2, message: /invalid credential key "lowercase"/ },
        { args: ["vault", "credential", "set", "1STARTS_WITH_DIGIT=x"], exit: 2, message: /invalid credential key "1STARTS_WITH_DIGIT"/ },
        { args: ["vault", "credential", "set", "HAS-DASH=x"], exit: 2, message: /invalid credential key "HAS-DASH"/ },
        { args: ["vault", "credential", "set", `GOOD=${CANARY}`, "bad=x"], exit: 2, message: /invalid credential key "bad"/ },
        { args: ["vault", "credential", "set", "NO_EQUALS_SIGN"], exit: 2, message: /"NO_EQUALS_SIGN" is not KEY=VALUE/ },
        { args: ["vault", "credential", "set", `=${CANARY}`], exit: 2, message: /is not KEY=VALUE/ },
        { args: ["vault", "credential", "set", "EMPTY_VALUE="], exit: 2, message: /the value of EMPTY_VALUE is empty/ },
        { args: ["vault", "credential", "set", "TWICE=1", "TWICE=2"], exit: 2, message: /TWICE is given twice/ },
        { args: ["vault", "credential", "get", "lowercase"], exit: 2, message: /invalid credential key/ },
        { args: ["vault", "credential", "delete", "EXISTING", "9BAD"], exit: 2, message: /invalid credential key "9BAD"/ },
        { args: ["vault", "credential", "get"], exit: 2, message: /missing required argument/ },
        { args: ["vault", "credential", "get", "NOT_THERE"], exit: 1, message: /no credential NOT_THERE/ },
        { args: ["vault", "credential", "list", "--vault", "unknown-vault"], exit: 1, message: /no vault named "unknown-vault"/ },
        { args: ["vault", "credential", "set", "EXISTING=changed"], exit: 1, message: /wrong master password/, env: { AGENT_VAULT_MASTER_PASSWORD: "not the password" } },
        { args: ["vault", "credential", "set", "EXISTING=changed", "--password-stdin"], exit: 1, message: /wrong master password/, stdin: "nope nope nope\n", env: NO_PASSWORD_ENV },
        { args: ["vault", "credential", "set", "EXISTING=changed"], exit: 1, message: /password is needed/i, env: NO_PASSWORD_ENV },
        { args: ["vault", "credential", "list", "--bogus-option"], exit: 2, message: /unknown option '--bogus-option'/ },
        { args: ["vault", "credential", "set", "EXISTING=changed", "--frobnicate"], exit: 2, message: /unknown option '--frobnicate'/ },
        { args: ["frobnicate"], exit: 2, message: /unknown command 'frobnicate'/ },
        { args: ["vault", "frobnicate"], exit: 2, message: /unknown command 'frobnicate'/ },
        { args: ["vault", "service", "add", "--name", "x", "--host", "evil..com", "--auth-type", "passthrough"], exit: 2, message: /evil\.\.com/ },
        { args: ["vault", "service", "add", "--name", "x", "--host", "*.com", "--auth-type", "passthrough"], exit: 2, message: /wildcard/ },
        { args: ["vault", "service", "add", "--name", "x", "--host", "a.com:99999", "--auth-type", "passthrough"], exit: 2, message: /99999/ },
        { args: ["vault", "service", "add", "--name", "x", "--host", "https://a.com", "--auth-type", "passthrough"], exit: 2, message: /scheme/ },
        { args: ["vault", "service", "add", "--name", "x", "--host", "api.github.com.", "--auth-type", "passthrough"], exit: 2, message: /dot/ },
        { args: ["vault", "service", "add", "--name", "x", "--host", "x.com", "--auth-type", "bearer", "--token-key", "NO_SUCH_KEY"], exit: 1, message: /NO_SUCH_KEY/ },
        { args: ["vault", "settings", "--unmatched", "whatever"], exit: 2, message: /--unmatched must be passthrough, deny or guard/ },
        { args: ["vault", "create", "UPPER"], exit: 2, message: /invalid vault name/ },
      ];
      const results = await Promise.all(cases.map((c) => av(home, c.args, { ...(c.stdin !== undefined ? { stdin: c.stdin } : {}), ...(c.env ? { env: c.env } : {}) })));
      results.forEach((r, i) => {
        const c = cases[i]!;
        try {
          expectError(r, c.exit, c.message);
        } catch (error) {
          throw new Error(`case ${i} failed:\n${describeRun(c.args, r)}\n${(error as Error).message}`);
        }
      });
      expect(snapshot(home)).toEqual(before);
      expect(await getValue(home, "EXISTING")).toBe("kept");
      expect((await okJson<CredentialView[]>(home, ["vault", "credential", "list"])).map((c) => c.key)).toEqual(["EXISTING", "TOK"]);
    },
    SLOW,
  );

  test(
    "an unknown option that resembles a real one is still a single error line plus hint",
    async () => {
      // commander's "(Did you mean --json?)" suggestion must not add a third stderr line.
      const home = await newHome();
      const [option, command] = await Promise.all([av(home, ["vault", "credential", "list", "--jsn"]), av(home, ["vault", "credentail", "list"])]);
      expectError(option, 2, /unknown option '--jsn'/);
      expectError(command, 2, /unknown command 'credentail'/);
    },
    SLOW,
  );

  test(
    "not initialized: an empty AGENT_VAULT_HOME says to run `agent-vault init` and creates nothing",
    async () => {
      const dir = scratchDir();
      const empty = join(dir, "empty-home");
      mkdirSync(empty, { mode: 0o700 });
      const env = cleanEnv({ AGENT_VAULT_HOME: empty, AGENT_VAULT_INSECURE_TEST_KDF: "1", AGENT_VAULT_MASTER_PASSWORD: TEST_PASSWORD });
      const commands = [
        ["vault", "credential", "list"],
        ["vault", "credential", "set", `K=${CANARY}`],
        ["vault", "list"],
        ["vault", "create", "x"],
        ["vault", "service", "list"],
        ["master-password", "remove"],
      ];
      const results = await Promise.all(commands.map((args) => runBinary(args, env)));
      for (const [i, r] of results.entries()) {
        transcript.push({ args: commands[i]!, result: r, mayReveal: false });
        const { message, hint } = expectError(r, 1, new RegExp(`no vault in ${empty.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
        expect(message.length).toBeGreaterThan(0);
        expect(hint).toContain("agent-vault init");
      }
      expect(readdirSync(empty)).toEqual([]);
      // A home that does not exist is not created either.
      const missing = join(dir, "missing-home");
      const r = await runBinary(["vault", "credential", "list"], cleanEnv({ ...env, AGENT_VAULT_HOME: missing }));
      expect(expectError(r, 1).hint).toContain("agent-vault init");
      expect(existsSync(missing)).toBe(false);
    },
    SLOW,
  );

  test(
    "a corrupted vault file (one flipped byte) is refused by name, for reads and writes, and left as it is",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "CORRUPT_ME=value"]);
      const bytes = readFileSync(vaultFile(home));
      const flipped = Buffer.from(bytes);
      const middle = Math.floor(flipped.length / 2);
      flipped[middle] = flipped[middle]! ^ 0x01;
      writeFileSync(vaultFile(home), flipped);
      const before = snapshot(home);
      const results = await Promise.all([
        av(home, ["vault", "credential", "list"]),
        av(home, ["vault", "credential", "get", "CORRUPT_ME"]),
        av(home, ["vault", "credential", "set", "NEW_KEY=x"]),
        av(home, ["vault", "create", "x"]),
      ]);
      for (const r of results) {
        const { message, hint } = expectError(r, 1, /corrupted/);
        expect(message).toContain(vaultFile(home));
        expect(hint).toMatch(/backup/);
      }
      expect(snapshot(home)).toEqual(before);
      expect(readFileSync(vaultFile(home)).equals(flipped)).toBe(true);
    },
    SLOW,
  );

  test(
    "a flipped byte with a recomputed checksum fails authentication (MAC), naming the file",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "MAC_KEY=value"]);
      const text = readFileSync(vaultFile(home), "utf8");
      const lines = text.split("\n");
      // Change the body (line 3) without breaking its JSON: vault "default" -> "defaulu".
      lines[2] = lines[2]!.replace('"current_vault":"default"', '"current_vault":"defaulu"');
      expect(lines[2]).toContain("defaulu");
      const firstFour = `${lines.slice(0, 4).join("\n")}\n`;
      const forged = `${firstFour}sum ${createHash("sha256").update(firstFour).digest("hex")}\n`;
      writeFileSync(vaultFile(home), forged);
      const before = snapshot(home);
      const { message } = expectError(await av(home, ["vault", "credential", "list"]), 1, /fails authentication/);
      expect(message).toContain(vaultFile(home));
      expect(snapshot(home)).toEqual(before);
    },
    SLOW,
  );

  test(
    "a truncated vault file says truncated",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "TRUNC=value"]);
      const bytes = readFileSync(vaultFile(home));
      const cuts = [
        bytes.subarray(0, Math.floor(bytes.length / 2)), // mid-line
        bytes.subarray(0, bytes.indexOf(0x0a, bytes.indexOf(0x0a) + 1) + 1), // two whole lines
        bytes.subarray(0, bytes.length - 1), // just the last newline missing
      ];
      for (const cut of cuts) {
        writeFileSync(vaultFile(home), cut);
        const before = snapshot(home);
        const { message, hint } = expectError(await av(home, ["vault", "credential", "set", "TRUNC=other"]), 1, /truncated/);
        expect(message).toContain(vaultFile(home));
        expect(hint).toMatch(/backup/);
        expect(snapshot(home)).toEqual(before);
      }
      writeFileSync(vaultFile(home), "");
      expectError(await av(home, ["vault", "credential", "list"]), 1, /empty/);
    },
    SLOW,
  );

  test(
    "a held lock makes a writer give up with a lock error after AGENT_VAULT_LOCK_TIMEOUT_MS, changing nothing",
    async () => {
      const home = await newHome();
      await ok(home, ["vault", "credential", "set", "LOCKED=before"]);
      const before = readFileSync(vaultFile(home));
      const lockDir = join(home.dir, "vault.av.lock");
      mkdirSync(lockDir);
      const touch = () => {
        const now = new Date();
        utimesSync(lockDir, now, now);
      };
      touch();
      const timer = setInterval(touch, 500);
      try {
        const started = Date.now();
        const r = await av(home, ["vault", "credential", "set", "LOCKED=after", "NEW=x"], { env: { AGENT_VAULT_LOCK_TIMEOUT_MS: "1500" } });
        const elapsed = Date.now() - started;
        const { message, hint } = expectError(r, 1, /locked/);
        expect(message).toContain(lockDir);
        expect(hint).toMatch(/lock/);
        expect(elapsed).toBeGreaterThanOrEqual(1400);
        expect(elapsed).toBeLessThan(8000);
        expect(readFileSync(vaultFile(home)).equals(before)).toBe(true);
        // Reads need no lock.
        expect(await getValue(home, "LOCKED")).toBe("before");
      } finally {
        clearInterval(timer);
        rmSync(lockDir, { recursive: true, force: true });
      }
      await ok(home, ["vault", "credential", "set", "LOCKED=after"]);
      expect(await getValue(home, "LOCKED")).toBe("after");
      expect(existsSync(lockDir)).toBe(false);
    },
    SLOW,
  );

  test(
    "a stale lock (untouched for more than 4 s) is taken over",
    async () => {
      const home = await newHome();
      const lockDir = join(home.dir, "vault.av.lock");
      mkdirSync(lockDir);
      const old = new Date(Date.now() - 10_000);
      utimesSync(lockDir, old, old);
      await ok(home, ["vault", "credential", "set", "STALE=taken-over"], { env: { AGENT_VAULT_LOCK_TIMEOUT_MS: "3000" } });
      expect(await getValue(home, "STALE")).toBe("taken-over");
      expect(existsSync(lockDir)).toBe(false);
    },
    SLOW,
  );
});

// ---------------------------------------------------------------------------------------------

describe("version and help", () => {
  test(
    "--version prints the package version; --help exits 0",
    async () => {
      const home = await newHome(false);
      const pkg = JSON.parse(readFileSync(join(import.meta.dir, "../../package.json"), "utf8")) as { version: string };
      const [version, help] = await Promise.all([av(home, ["--version"]), av(home, ["--help"])]);
      expect(version).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("Usage: agent-vault");
    },
    SLOW,
  );
});

// ---------------------------------------------------------------------------------------------

describe("secrets never leak", () => {
  test(
    "the canary appears in no stdout/stderr except `credential get` and `list --reveal`",
    () => {
      // Every run above went through av(); this checks them all. It runs last in this file.
      expect(transcript.length).toBeGreaterThan(100);
      const leaks = transcript.filter((t) => !t.mayReveal && (t.result.stdout.includes(CANARY) || t.result.stderr.includes(CANARY)));
      expect(leaks.map((t) => describeRun(t.args, t.result))).toEqual([]);
      // And the canary really was printed where it is allowed, so the check above is not vacuous.
      expect(transcript.some((t) => t.mayReveal && t.result.stdout.includes(CANARY))).toBe(true);
    },
    SLOW,
  );
});
