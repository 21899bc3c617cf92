// Attack: the agent puts an old copy of vault.av back (issue 13, item 5). Same user, so it can
// copy the file; the copy is genuine (its MAC holds), and in it a session that was revoked since is
// live again. The running server, which saw the revocation, must refuse the old copy, keep the
// token refused, say so, and write the newer state back so that a command started afterwards sees
// it too. Broker and attacker run as the unprivileged user.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { asAgent } from "../support/attacker.ts";
import { TEST_PASSWORD, type TempHome } from "../support/binary.ts";
import { waitUntil } from "../support/process.ts";
import { basicProxyAuth, openPlain } from "../support/proxy-client.ts";
import { type Server, startServer } from "../support/server.ts";
import { agentHome, fileScene } from "../support/scene.ts";

const scene = fileScene("av-rollback-");
let H: TempHome;
let S: Server;

async function connectStatus(token: string): Promise<number> {
  const conn = await openPlain(S.mitmPort);
  try {
    const res = await conn.request(
      "CONNECT",
      "api.example.test:443",
      [
        ["Host", "api.example.test:443"],
        ["Proxy-Authorization", basicProxyAuth(token)],
      ],
      undefined,
      5000,
    );
    return res.status;
  } finally {
    conn.close();
  }
}

function generationOf(path: string): number {
  return (JSON.parse(readFileSync(path, "utf8").split("\n")[2]!) as { generation?: number }).generation ?? 0;
}

async function asAttacker(script: string): Promise<number> {
  const proc = Bun.spawn(asAgent(["sh", "-c", script]), { stdout: "ignore", stderr: "ignore" });
  return proc.exited;
}

beforeAll(async () => {
  H = await agentHome(scene);
  S = await startServer(H, {}, scene.cleanups);
}, 60_000);

describe("an old copy of vault.av put back", () => {
  test("a revoked session stays revoked at the running server, which says so and writes the newer state back", async () => {
    process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
    const store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
    const { token, session } = await createSession(store, "default", {});
    H.reown();
    // Authenticated: anything but 407 (the host does not resolve here, so 502 is the answer).
    expect(await connectStatus(token)).not.toBe(407);
    const stateFile = join(H.dir, "vault.av");
    const copy = join(H.dir, "..", "user-home", "vault.av.copy");
    // The agent keeps a copy while the session is live.
    expect(await asAttacker(`cp "${stateFile}" "${copy}"`)).toBe(0);
    // The user revokes the session.
    const revoked = await H.run(["vault", "session", "revoke", session.id]);
    expect(revoked.code, revoked.stderr).toBe(0);
    await waitUntil("the revocation at the server", async () => (await connectStatus(token)) === 407, 5000);
    const newer = generationOf(stateFile);
    expect(generationOf(copy)).toBeLessThan(newer);
    // The agent puts the old copy back (cp over it, then a rename, the way an editor would). The
    // file is not read back here: the server's audit timers read the vault at any moment, and may
    // already have refused the copy and written the newer state back.
    expect(await asAttacker(`cp "${copy}" "${stateFile}.x" && mv "${stateFile}.x" "${stateFile}"`)).toBe(0);
    // The server refuses it: the token stays refused, and the newer state goes back on disk.
    for (let i = 0; i < 5; i++) {
      expect(await connectStatus(token)).toBe(407);
      await Bun.sleep(100);
    }
    await waitUntil("the newer state written back", () => generationOf(stateFile) > newer, 5000);
    await waitUntil("the server's note", () => S.live.stderr.includes("older than"), 5000);
    // A command started now sees the revocation too.
    const list = await H.run(["vault", "session", "list", "--all", "--json"]);
    const sessions = JSON.parse(list.stdout) as { id: string; revoked_at: string | null }[];
    expect(sessions.find((s) => s.id === session.id)?.revoked_at).not.toBeNull();
    expect(S.live.stderr).not.toContain(token);
  }, 60_000);

  test("master-password change stops the running server (it holds the old key) and says so", async () => {
    const r = await H.run(["master-password", "change", "--password-stdin", "--new-password-stdin"], {
      stdin: `${TEST_PASSWORD}\nan entirely new password\n`,
      env: { AGENT_VAULT_MASTER_PASSWORD: undefined },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("stopped the running server");
    await waitUntil("the server to exit", () => S.live.proc.exitCode !== null, 5000);
  }, 60_000);
});
