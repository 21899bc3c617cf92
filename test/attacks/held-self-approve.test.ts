// Attack: the agent tries to approve its own held request. Same Unix user as the broker (both run
// as the unprivileged user here): it can read and write every file of the data directory, run the
// CLI, call the agent API with its session token, and keep copies of old state files. A request an
// `approve` rule holds must reach the upstream only after a person with the master password allows
// it: the agent's `held allow` (no password), an edited vault.av (status flipped to allowed), an old
// copy in which an earlier request was allowed, answer files it plants, API routes it guesses and
// a retry of a request allowed once all leave zero bytes on the upstream's wire.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { asAgent } from "../support/attacker.ts";
import { cleanEnv, TEST_PASSWORD, type TempHome } from "../support/binary.ts";
import { waitUntil } from "../support/process.ts";
import { type Server, startServer } from "../support/server.ts";
import { agentUpstream, type Upstream } from "../support/upstream.ts";
import { agentServiceHome, fileScene } from "../support/scene.ts";

const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;
const scene = fileScene("av-held-attack-", { absent: [SECRET], openToAgent: true });
const { cleanups, outputs } = scene;
const HOST = "api.svc.test";

let H: TempHome;
let U: Upstream;
let S: Server;
let token: string;
let ENV: Record<string, string>;

interface Got {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function spawnRecorded(argv: string[], env: Record<string, string>): Promise<Got> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", stdin: "ignore", env });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  outputs.push(stdout, stderr);
  return { code, stdout, stderr };
}

/** A command as the agent user, its output recorded for the canary check. */
function asAttacker(argv: string[]): Promise<Got> {
  return spawnRecorded(asAgent(argv), { PATH: process.env.PATH ?? "/usr/bin:/bin" });
}

/** The agent's request through the proxy, by curl as the agent user. */
function agentRequest(path: string, body: string): Promise<Got> {
  return asAttacker([
    "curl",
    "-sS",
    "--max-time",
    "60",
    "-x",
    `http://${token}:default@127.0.0.1:${S.mitmPort}`,
    "--cacert",
    join(H.dir, "ca.pem"),
    "-X",
    "POST",
    "-H",
    "content-type: application/json",
    "-d",
    body,
    `https://${HOST}${path}`,
  ]);
}

/** The agent runs the CLI (as the agent user: H.argv): the data directory is its own, the master password is not. */
function agentCli(args: string[]): Promise<Got> {
  return spawnRecorded(H.argv(args), cleanEnv({ ...H.env, AGENT_VAULT_MASTER_PASSWORD: undefined }));
}

function wireBytes(): number {
  return U.wire.filter((w) => w.sni === HOST).reduce((n, w) => n + w.data.length, 0);
}

interface HeldView {
  id: number;
  status: string;
  path: string;
  preview: string;
}

async function pendingFor(path: string): Promise<HeldView> {
  return waitUntil(
    `the held request for ${path}`,
    async () => {
      const r = await H.run(["held", "list", "--json"]);
      outputs.push(r.stdout, r.stderr);
      return (JSON.parse(r.stdout) as HeldView[]).find((h) => h.path === path && h.status === "pending") ?? null;
    },
    15_000,
  );
}

const stateFile = () => join(H.dir, "vault.av");

/** Puts a good state file back, as the person (the agent could as well), owned by the agent user. */
function restore(bytes: Buffer): void {
  writeFileSync(`${stateFile()}.good`, bytes, { mode: 0o600 });
  renameSync(`${stateFile()}.good`, stateFile());
  H.reown();
}

beforeAll(async () => {
  // The upstream answers with the request's path (replyWithPath): never the credential.
  ({ upstream: U, env: ENV } = await agentUpstream(scene.scratch, HOST, cleanups));
  H = await agentServiceHome(scene, SECRET, HOST, () => ENV);
  S = await startServer(H, ENV, cleanups);
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  const store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
  const policy = {
    rules: [
      {
        service: "svc",
        approve: [
          { methods: ["POST"], path: "/repos/*/merges", timeout: "60s" },
          { methods: ["POST"], path: "/quick/*", timeout: "4s" },
        ],
      },
    ],
  };
  token = (await createSession(store, "default", { policy })).token;
  H.reown();
}, 60_000);

describe("the agent cannot approve its own held request", () => {
  test("its own `held allow` (no master password), planted answer files and guessed API routes: nothing is sent", async () => {
    const before = wireBytes();
    const pending = agentRequest("/repos/a/merges", '{"attack":"cli"}');
    const held = await pendingFor("/repos/a/merges");
    const own = await agentCli(["held", "allow", String(held.id)]);
    expect(own.code).not.toBe(0);
    expect(own.stderr).toContain("password");
    // Answer files where a file-based queue might look for them.
    const planted = await asAttacker([
      "sh",
      "-c",
      `d="${H.dir}"; mkdir -p "$d/held" "$d/answers" && echo '{"id":${held.id},"status":"allowed"}' > "$d/held/${held.id}.json" && echo allow > "$d/answers/${held.id}" && echo '{"held":${held.id},"allow":true}' > "$d/held.json"`,
    ]);
    expect(planted.code, planted.stderr).toBe(0);
    // The agent API with its own token: there is no route that answers a held request.
    for (const route of [`/v1/held/${held.id}/allow`, `/held/${held.id}/allow`, `/v1/held/${held.id}`, `/v1/proposals/${held.id}/approve`]) {
      const r = await asAttacker([
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        "-H",
        `Authorization: Bearer ${token}`,
        "-d",
        '{"allow":true}',
        `http://127.0.0.1:${S.apiPort}${route}`,
      ]);
      expect(["404", "401", "405", "400"]).toContain(r.stdout);
    }
    await Bun.sleep(500);
    expect(wireBytes()).toBe(before);
    // Still pending; a person denies it.
    expect((await pendingFor("/repos/a/merges")).id).toBe(held.id);
    expect((await H.run(["held", "deny", String(held.id), "--reason", "no"])).code).toBe(0);
    const res = await pending;
    expect(res.stdout).toContain("approval_denied");
    expect(wireBytes()).toBe(before);
  }, 60_000);

  test("vault.av edited to say allowed: the MAC fails, the request stays held, nothing is sent", async () => {
    const before = wireBytes();
    const pending = agentRequest("/repos/b/merges", '{"attack":"edit"}');
    const held = await pendingFor("/repos/b/merges");
    const original = readFileSync(stateFile());
    // Flip the record's status in place (and, for good measure, every pending record's).
    const edit = await asAttacker(["sh", "-c", `f="${stateFile()}"; sed 's/"status":"pending"/"status":"allowed"/g' "$f" > "$f.x" && mv "$f.x" "$f" && grep -c '"status":"allowed"' "$f"`]);
    expect(edit.code, edit.stderr).toBe(0);
    await Bun.sleep(1000);
    expect(wireBytes()).toBe(before);
    // The person's copy comes back (the agent could break the file anyway: that is denial, not approval).
    restore(original);
    expect((await H.run(["held", "deny", String(held.id)])).code).toBe(0);
    expect((await pending).stdout).toContain("approval_denied");
    expect(wireBytes()).toBe(before);
  }, 60_000);

  test("an old copy in which an earlier request was allowed, and a retry of the allowed request: each is held anew", async () => {
    const first = agentRequest("/quick/c", '{"n":1}');
    const allowed = await pendingFor("/quick/c");
    expect((await H.run(["held", "allow", String(allowed.id)])).code).toBe(0);
    expect((await first).stdout).toContain('"path":"/quick/c"');
    // The agent keeps the state in which #allowed is allowed.
    const copy = join(H.dir, "..", "user-home", "vault.av.allowed");
    expect((await asAttacker(["cp", stateFile(), copy])).code).toBe(0);
    const before = wireBytes();
    // The same request again: an approval is for one request, so it is held again.
    const retry = agentRequest("/quick/c", '{"n":1}');
    const again = await pendingFor("/quick/c");
    expect(again.id).not.toBe(allowed.id);
    // The old copy put back: refused as a rollback, and it holds no record this request waits on.
    expect((await asAttacker(["sh", "-c", `cp "${copy}" "${stateFile()}.x" && mv "${stateFile()}.x" "${stateFile()}"`])).code).toBe(0);
    await Bun.sleep(500);
    expect(wireBytes()).toBe(before);
    // Then a copy with the allowed record renumbered to point at this request (its MAC fails).
    const forged = await asAttacker([
      "sh",
      "-c",
      `sed 's/"id":${allowed.id},"status":"allowed"/"id":${again.id},"status":"allowed"/' "${copy}" > "${stateFile()}.x" && mv "${stateFile()}.x" "${stateFile()}" && grep -c '"id":${again.id},"status":"allowed"' "${stateFile()}"`,
    ]);
    expect(forged.code, forged.stderr).toBe(0);
    // Nobody answered: the rule's 4 s run out and the request ends unsent.
    const res = await retry;
    expect(res.stdout).toContain("approval_timeout");
    expect(wireBytes()).toBe(before);
  }, 60_000);
});
