// Attack: the agent, inside `agent-vault run`'s sandbox, makes the broker run a command of its
// choosing outside the sandbox through a pass: source (a person's configuration, not the agent's).
// HOME stays writable in the sandbox, so the agent writes `agent-program` into ~/.gnupg/gpg.conf
// and stops gpg-agent (its socket is in ~/.gnupg); the broker's next fetch runs `pass show`, gpg
// finds no agent and starts the agent's program, as the person, outside bwrap: its own network
// namespace is the host's, not the sandbox's. exec: sources are refused in proposals for exactly
// this reason ("it would run the agent's command as the person, outside the sandbox"). The GnuPG
// home is read-only in the sandbox: neither its files nor the directory itself can be replaced.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { asAgent, giveToAgent } from "../support/attacker.ts";
import { recordingCli, type TempHome } from "../support/binary.ts";
import { agentHome, fileScene } from "../support/scene.ts";
import { agentUpstream, type Upstream } from "../support/upstream.ts";

const HAVE_TOOLS = Bun.spawnSync(["sh", "-c", "command -v bwrap && command -v pass && command -v gpg"]).exitCode === 0;
const SECRET = `sk_live_${randomBytes(18).toString("hex")}`;
const HOST = "api.svc.test";
const scene = fileScene("av-source-gpg-", { absent: [SECRET] });
const { scratch, cleanups, outputs } = scene;
let U: Upstream;
let H: TempHome;
let ENV: Record<string, string>;
let userHome: string;

beforeAll(async () => {
  if (!HAVE_TOOLS) return;
  ({ upstream: U, env: ENV } = await agentUpstream(scratch, HOST, cleanups));
  H = await agentHome(scene);
  userHome = join(H.dir, "..", "user-home");
  // The person's pass store, a key without a passphrase, in the user's home.
  const gnupg = join(userHome, ".gnupg");
  const sh = (cmd: string) => {
    const r = Bun.spawnSync(["sh", "-c", cmd], { env: { PATH: "/usr/bin:/bin", HOME: userHome, GNUPGHOME: gnupg } });
    if (r.exitCode !== 0) throw new Error(`${cmd}: ${r.stderr.toString()}`);
  };
  sh(`mkdir -m 700 -p ${gnupg} && gpg --batch --passphrase '' --quick-gen-key person@example.com default default never`);
  sh(`pass init person@example.com && printf '%s\\n' ${SECRET} | pass insert -e team/token && gpgconf --kill gpg-agent`);
  giveToAgent(userHome);
  // The gpg-agent the broker's fetches start (as the agent user) ends with the test.
  cleanups.push(() => void Bun.spawnSync(asAgent(["env", `HOME=${userHome}`, `GNUPGHOME=${gnupg}`, "gpgconf", "--kill", "gpg-agent"])));
  const { ok } = recordingCli(
    () => H,
    () => ENV,
    outputs,
  );
  await ok(["vault", "credential", "source", "SVC_KEY", "pass:team/token", "--ttl", "1s"]);
  await ok(["vault", "service", "add", "--name", "svc", "--host", HOST, "--auth-type", "bearer", "--token-key", "SVC_KEY"]);
}, 120_000);

describe.skipIf(!HAVE_TOOLS)("a pass: source run by the broker", () => {
  test("does not start a program the sandboxed agent named in ~/.gnupg/gpg.conf", async () => {
    const evidence = join(userHome, "ran-outside");
    const script = join(scratch, "attack.sh");
    writeFileSync(
      script,
      `
cat > "$HOME/evil.sh" <<'EOS'
#!/bin/sh
readlink /proc/self/ns/net > "$HOME/ran-outside"
exec /usr/bin/gpg-agent "$@"
EOS
chmod +x "$HOME/evil.sh"
echo "agent-program $HOME/evil.sh" >> "$HOME/.gnupg/gpg.conf"
echo "pinentry-program $HOME/evil.sh" >> "$HOME/.gnupg/gpg-agent.conf"
# A GnuPG home of its own in place of the person's (keys copied, its gpg.conf added).
cp -r "$HOME/.gnupg" "$HOME/.gnupg-own" && echo "agent-program $HOME/evil.sh" >> "$HOME/.gnupg-own/gpg.conf"
mv "$HOME/.gnupg" "$HOME/.gnupg-old" || rm -rf "$HOME/.gnupg"; mv "$HOME/.gnupg-own" "$HOME/.gnupg"
gpgconf --kill gpg-agent 2>/dev/null
echo "inside=$(readlink /proc/self/ns/net)"
curl -sS -m 30 -o /dev/null -w "status=%{http_code}\\n" https://${HOST}/v1/thing 2>&1
`,
      { mode: 0o644 },
    );
    const r = await H.run(["run", "--", "sh", script], { env: ENV });
    outputs.push(r.stdout, r.stderr);
    if (process.env.DEBUG_ATTACK) console.log(r.stdout, r.stderr, existsSync(evidence) ? readFileSync(evidence, "utf8") : "no evidence");
    expect(r.stdout).toContain("status=200");
    // The broker fetched the value (the gpg it ran decrypted the store) and sent it to the service.
    expect(Buffer.concat(U.wire.filter((w) => w.sni === HOST).map((w) => w.data)).toString("latin1")).toContain(`Bearer ${SECRET}`);
    // The agent's program ran outside the sandbox: another network namespace than the agent's.
    const inside = /inside=(\S+)/.exec(r.stdout)?.[1];
    const outside = existsSync(evidence) ? readFileSync(evidence, "utf8").trim() : null;
    expect(outside === null || outside === inside).toBe(true);
  }, 90_000);
});
