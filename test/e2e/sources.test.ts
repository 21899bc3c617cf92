// Credentials from the secrets systems a team already runs (issue 17), through the compiled binary
// with real parts: Debian's `pass` and `gnupg` with throwaway keys, and a bare git repository as
// the team's remote, shared by two members. Member A writes the secret and pushes; member B pulls;
// B's agent (`agent-vault run -- curl`) gets the new value injected within the TTL, which the local
// HTTPS upstream's raw wire shows. For 1Password's `op` and HashiCorp's `vault`, which cannot be
// installed here, stand-in scripts at those names check the exact arguments the real CLIs take
// (from their documentation: `op read --no-newline op://VAULT/ITEM/FIELD`;
// `vault kv get -mount=MOUNT -field=FIELD PATH`) and are put first on AGENT_VAULT_SOURCE_PATH, the
// only PATH the broker looks commands up on. Then failure: the last good value is served for one
// more TTL while `status` and `credential list` say the source fails, then 502
// source_unavailable naming the source, and the command's stderr reaches nothing the agent sees.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { recordingCli, type TempHome } from "../support/binary.ts";
import { startServer } from "../support/server.ts";
import { type Upstream } from "../support/upstream.ts";
import { fileScene, sceneHome, sceneUpstream } from "../support/scene.ts";
import { waitUntil } from "../support/process.ts";

const FIRST = `ghp_${randomBytes(16).toString("hex")}`;
const SECOND = `ghp_${randomBytes(16).toString("hex")}`;
const OP_VALUE = `ops_${randomBytes(16).toString("hex")}`;
const VAULT_VALUE = `hvs_${randomBytes(16).toString("hex")}`;
const EXEC_VALUE = `exe_${randomBytes(16).toString("hex")}`;
const STDERR_CANARY = `stderr_${randomBytes(12).toString("hex")}`;
const HAS_PASS = spawnSync("sh", ["-c", "command -v pass && command -v gpg && command -v git"]).status === 0;
const scene = fileScene("av-sources-e2e-", { absent: [STDERR_CANARY] });
const { scratch, cleanups, outputs } = scene;
const HOSTS = ["api.github.test", "api.op.test", "api.vault.test", "api.exec.test", "api.gh2.test"];

let U: Upstream;
let B: TempHome;
let ENV: Record<string, string>;
const team = { a: join(scratch, "a"), b: join(scratch, "b"), remote: join(scratch, "remote.git") };
const GIT_ENV = { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@test", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@test" };

/** A member's own environment: their GPG home and their clone of the team's store. */
function member(dir: string): Record<string, string> {
  return { GNUPGHOME: join(dir, "gnupg"), PASSWORD_STORE_DIR: join(dir, "store"), PASSWORD_STORE_GPG_OPTS: "--trust-model always", ...GIT_ENV };
}

function sh(cmd: string[], env: Record<string, string>, input?: string): string {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { env: { PATH: process.env.PATH!, HOME: scratch, ...env }, input, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function newKey(env: Record<string, string>, name: string): string {
  mkdirSync(env.GNUPGHOME!, { recursive: true, mode: 0o700 });
  sh(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", `${name} <${name}@team.test>`, "default", "default", "never"], env);
  return /^fpr:+([0-9A-F]{40}):/m.exec(sh(["gpg", "--list-keys", "--with-colons"], env))![1]!;
}

const { ok, av } = recordingCli(
  () => B,
  () => ({ ...ENV, ...member(team.b) }),
  outputs,
);

/** What B's agent sends through `run`: curl to HOST; returns what reached the upstream for it. */
async function agentRequest(host: string): Promise<{ status: string; wire: string }> {
  const mark = U.wire.length;
  const r = await av(["run", "--no-sandbox", "--quiet", "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", `https://${host}/v1/user`]);
  await Bun.sleep(30);
  const wire = Buffer.concat(
    U.wire
      .slice(mark)
      .filter((w) => w.sni === host)
      .map((w) => w.data),
  ).toString("latin1");
  return { status: r.stdout, wire };
}

beforeAll(async () => {
  if (!HAS_PASS) return;
  U = await sceneUpstream(scene);
  B = await sceneHome(scene);

  // The team: A and B each have a key; the store is encrypted to both and shared through a bare repo.
  const A = member(team.a);
  const Bm = member(team.b);
  const fprA = newKey(A, "a");
  const fprB = newKey(Bm, "b");
  sh(["sh", "-c", `gpg --export ${fprB} | GNUPGHOME=${A.GNUPGHOME} gpg --batch --import`], Bm);
  sh(["git", "init", "--bare", "-q", team.remote], {});
  sh(["pass", "init", fprA, fprB], A);
  sh(["pass", "git", "init"], A);
  sh(["pass", "git", "remote", "add", "origin", team.remote], A);
  sh(["pass", "insert", "-e", "team/github"], A, `${FIRST}\n`);
  sh(["pass", "git", "push", "-q", "-u", "origin", "HEAD"], A);
  sh(["git", "clone", "-q", team.remote, Bm.PASSWORD_STORE_DIR!], Bm);

  // Stand-ins for op and vault that accept only what the real CLIs are documented to take.
  const bin = join(scratch, "standins");
  mkdirSync(bin);
  writeFileSync(
    join(bin, "op"),
    `#!/bin/sh\n[ "$#" = 3 ] && [ "$1" = read ] && [ "$2" = --no-newline ] && [ "$3" = op://Team/GitHub/token ] || { echo "op stand-in: unexpected arguments: $*" >&2; exit 2; }\n[ -n "$OP_SERVICE_ACCOUNT_TOKEN" ] || { echo "op stand-in: not signed in" >&2; exit 1; }\nprintf %s '${OP_VALUE}'\n`,
  );
  writeFileSync(
    join(bin, "vault"),
    `#!/bin/sh\n[ "$#" = 5 ] && [ "$1" = kv ] && [ "$2" = get ] && [ "$3" = -mount=secret ] && [ "$4" = -field=token ] && [ "$5" = team/github ] || { echo "vault stand-in: unexpected arguments: $*" >&2; exit 2; }\n[ -n "$VAULT_ADDR" ] && [ -n "$VAULT_TOKEN" ] || { echo "vault stand-in: no VAULT_ADDR/VAULT_TOKEN" >&2; exit 1; }\nprintf %s '${VAULT_VALUE}'\n`,
  );
  // exec: a script that prints a file, or fails with the canary on stderr when the file is gone.
  writeFileSync(join(bin, "team-secret"), `#!/bin/sh\n[ -f "${scratch}/exec-value" ] || { echo "${STDERR_CANARY}: no value" >&2; exit 3; }\ncat "${scratch}/exec-value"\n`);
  for (const name of ["op", "vault", "team-secret"]) chmodSync(join(bin, name), 0o755);
  writeFileSync(join(scratch, "exec-value"), `${EXEC_VALUE}\n`);

  ENV = {
    AGENT_VAULT_CONNECT_TO: HOSTS.map((h) => `${h}:443:127.0.0.1:${U.port}`).join(","),
    AGENT_VAULT_UPSTREAM_CA: U.caFile,
    AGENT_VAULT_SOURCE_PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`,
    OP_SERVICE_ACCOUNT_TOKEN: "ops_test_account",
    VAULT_ADDR: "https://vault.team.test:8200",
    VAULT_TOKEN: "hvs.test-token",
  };
  await ok(["vault", "credential", "source", "GITHUB_TOKEN", "pass:team/github", "--ttl", "3s", "--description", "team GitHub token"]);
  await ok(["vault", "credential", "source", "OP_TOKEN", "op://Team/GitHub/token"]);
  await ok(["vault", "credential", "source", "VAULT_TOKEN_KEY", "vault:secret/team/github#token"]);
  await ok(["vault", "credential", "source", "EXEC_TOKEN", `exec:${join(bin, "team-secret")}`, "--ttl", "2s"]);
  const services: [string, string, string][] = [
    ["github", "api.github.test", "GITHUB_TOKEN"],
    ["op", "api.op.test", "OP_TOKEN"],
    ["hv", "api.vault.test", "VAULT_TOKEN_KEY"],
    ["exec", "api.exec.test", "EXEC_TOKEN"],
  ];
  for (const [name, host, key] of services) await ok(["vault", "service", "add", "--name", name, "--host", host, "--auth-type", "bearer", "--token-key", key]);
  await startServer(B, { ...ENV, ...Bm }, cleanups);
}, 90_000);

describe.skipIf(!HAS_PASS)("pass shared through git by two members", () => {
  test("B's agent gets A's new value within the TTL after B pulls", async () => {
    const first = await agentRequest("api.github.test");
    expect(first.status).toBe("200");
    expect(first.wire).toContain(`authorization: Bearer ${FIRST}`);

    const A = member(team.a);
    sh(["pass", "insert", "-f", "-e", "team/github"], A, `${SECOND}\n`);
    sh(["pass", "git", "push", "-q"], A);
    sh(["pass", "git", "pull", "-q"], member(team.b));
    const pulled = Date.now();
    const seen = await waitUntil(
      "the new value on the wire",
      async () => {
        const r = await agentRequest("api.github.test");
        return r.wire.includes(SECOND) ? r : null;
      },
      10_000,
    );
    // Within the TTL (3 s) plus one fetch and one curl.
    expect(Date.now() - pulled).toBeLessThan(3_000 + 2_500);
    expect(seen.wire).not.toContain(FIRST);
  }, 30_000);

  test("credential list shows the source; set on a sourced key says to change it at the source", async () => {
    const list = await ok(["vault", "credential", "list", "--json"]);
    const views = JSON.parse(list.stdout) as { key: string; type: string; source?: { from: string } }[];
    expect(views.find((v) => v.key === "GITHUB_TOKEN")).toMatchObject({ type: "source", source: { from: "pass:team/github" } });
    expect(list.stdout).not.toContain(FIRST);
    const set = await av(["vault", "credential", "set", "GITHUB_TOKEN=x"]);
    expect(set.code).toBe(1);
    expect(set.stderr).toContain("change the value there");
    // A typo in the path fails at `source` (it fetches once), and nothing is stored.
    const typo = await av(["vault", "credential", "source", "TYPO", "pass:team/nope"]);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain("pass exited with status 1");
    expect((await ok(["vault", "credential", "list", "--json"])).stdout).not.toContain("TYPO");
    for (const bad of ["pass:../x", "pass:-x", "op://only/two", "vault:secret/x", "exec:curl x | sh", "ftp:x"]) {
      const r = await av(["vault", "credential", "source", "BAD", bad, "--no-check"]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr.split("\n").filter(Boolean)[0]).toContain("agent-vault: error: source");
    }
  });
});

describe.skipIf(!HAS_PASS)("a proposal asking for a sourced credential", () => {
  test("the reviewer sees the exact reference; once approved, the agent's requests carry the value", async () => {
    const proposal = JSON.stringify({
      services: [{ action: "set", name: "gh2", host: "api.gh2.test", auth: { type: "bearer", token: "GH2_TOKEN" } }],
      credentials: [{ action: "set", key: "GH2_TOKEN", source: "pass:team/github", description: "the team token" }],
      message: "need the team token",
    });
    const script = `curl -s -X POST -H "Authorization: Bearer $AGENT_VAULT_SESSION_TOKEN" -H "content-type: application/json" --data '${proposal}' "$AGENT_VAULT_ADDR/v1/proposals"`;
    const filed = JSON.parse((await ok(["run", "--no-sandbox", "--quiet", "--", "sh", "-c", script])).stdout) as { id: number; status: string };
    expect(filed.status).toBe("pending");
    const show = await ok(["vault", "proposal", "show", String(filed.id)]);
    expect(show.stdout).toContain("fetched from pass:team/github");
    const bad = await av([
      "run",
      "--no-sandbox",
      "--quiet",
      "--",
      "sh",
      "-c",
      script.replace("pass:team/github", "exec:curl x | sh").replace("GH2_TOKEN", "GH3_TOKEN").replace("GH2_TOKEN", "GH3_TOKEN").replace("gh2", "gh3"),
    ]);
    expect(bad.stdout).toContain("invalid_request");
    await ok(["vault", "proposal", "approve", String(filed.id), "--yes"]);
    const list = JSON.parse((await ok(["vault", "credential", "list", "--json"])).stdout) as { key: string; type: string; source?: { from: string } }[];
    expect(list.find((v) => v.key === "GH2_TOKEN")).toMatchObject({ type: "source", source: { from: "pass:team/github" } });
    const r = await agentRequest("api.gh2.test");
    expect(r.status).toBe("200");
    expect(r.wire).toContain(`authorization: Bearer ${SECOND}`);
  }, 30_000);
});

describe.skipIf(!HAS_PASS)("op and vault through stand-ins that check the documented arguments", () => {
  test("op read --no-newline op://Team/GitHub/token, and OP_* reaches it", async () => {
    const r = await agentRequest("api.op.test");
    expect(r.status).toBe("200");
    expect(r.wire).toContain(`authorization: Bearer ${OP_VALUE}`);
  });
  test("vault kv get -mount=secret -field=token team/github, and VAULT_ADDR/VAULT_TOKEN reach it", async () => {
    const r = await agentRequest("api.vault.test");
    expect(r.status).toBe("200");
    expect(r.wire).toContain(`authorization: Bearer ${VAULT_VALUE}`);
  });
});

describe.skipIf(!HAS_PASS)("a failing source", () => {
  test("last good value for one more TTL while status says failing; then 502 source_unavailable; stderr goes nowhere the agent reads", async () => {
    const first = await agentRequest("api.exec.test");
    expect(first.wire).toContain(`Bearer ${EXEC_VALUE}`);
    rmSync(join(scratch, "exec-value"));
    await Bun.sleep(2_100); // past the TTL (2 s): the next use fetches again, and that fails
    const stale = await agentRequest("api.exec.test");
    expect(stale.status).toBe("200");
    expect(stale.wire).toContain(`Bearer ${EXEC_VALUE}`);
    // The request log says so on the request that went through with the old value.
    const logged = await waitUntil(
      "the log's note",
      () => {
        const lines = existsSync(join(B.dir, "requests.log")) ? readFileSync(join(B.dir, "requests.log"), "utf8").split("\n").filter(Boolean) : [];
        return lines.map((l) => JSON.parse(l) as { host: string; status: number; reason?: string }).find((l) => l.host === "api.exec.test" && l.reason?.includes("last good value"));
      },
      5_000,
    );
    expect(logged).toMatchObject({
      status: 200,
      reason: expect.stringMatching(/^credential EXEC_TOKEN: its source exec:.* fails \(.*team-secret exited with status 3\); its last good value was sent$/),
    });
    const status = await waitUntil(
      "status to say the source fails",
      async () => {
        const s = await ok(["status", "--json"]);
        return s.stdout.includes("EXEC_TOKEN") ? s.stdout : null;
      },
      5_000,
    );
    const failing = (JSON.parse(status) as { vaults: { sources_failing: { key: string; error: string }[] }[] }).vaults[0]!.sources_failing;
    expect(failing).toEqual([expect.objectContaining({ key: "EXEC_TOKEN", error: expect.stringMatching(/team-secret exited with status 3$/) })]);
    expect((await ok(["vault", "credential", "list"])).stdout).toContain("source (failing)");

    await Bun.sleep(2_200); // past two TTLs since the last good fetch
    const mark = U.wire.length;
    const r = await av(["run", "--no-sandbox", "--quiet", "--", "curl", "-s", "-D", "-", "https://api.exec.test/v1/user"]);
    expect(r.stdout).toContain("502");
    expect(r.stdout.toLowerCase()).toContain("x-agent-vault-error: source_unavailable");
    expect(r.stdout).toContain("exec:");
    expect(r.stdout).toContain("team-secret exited with status 3");
    expect(U.wire.slice(mark).filter((w) => w.sni === "api.exec.test")).toHaveLength(0);

    // Back: the next request fetches again.
    writeFileSync(join(scratch, "exec-value"), `${EXEC_VALUE}\n`);
    const back = await agentRequest("api.exec.test");
    expect(back.wire).toContain(`Bearer ${EXEC_VALUE}`);
    // The command's stderr is in no file of the data directory.
    for (const name of ["requests.log", "vault.av"]) {
      const file = join(B.dir, name);
      if (existsSync(file)) outputs.push(await Bun.file(file).text());
    }
  }, 30_000);
});

// gopass: the gopass.pw CLI reads a pass store (PASSWORD_STORE_DIR) and prints only the password
// with `show --password`. Debian's `gopass` package is another program (aviau/gopass, "gopass
// v1.5.0") that has no --password: on such a machine this test is skipped, and says why.
const GOPASS_VERSION = spawnSync("gopass", ["version"], { encoding: "utf8" }).stdout ?? "";
const HAS_GOPASS_PW = HAS_PASS && /^gopass 1\.(1\d|[6-9])/m.test(GOPASS_VERSION);
test.skipIf(!HAS_GOPASS_PW)(
  `gopass:PATH through gopass.pw's CLI (skipped: ${GOPASS_VERSION.trim() ? `installed gopass is "${GOPASS_VERSION.trim().split("\n")[0]}", not gopass.pw's` : "gopass is not installed"})`,
  async () => {
    await ok(["vault", "credential", "source", "GOPASS_TOKEN", "gopass:team/github"]);
    const got = await ok(["vault", "credential", "get", "GOPASS_TOKEN"]);
    expect([FIRST, SECOND]).toContain(got.stdout.trim());
  },
);

test.skipIf(HAS_PASS)("pass, gpg and git are needed for these tests (apt-get install pass gnupg git)", () => {});
