// `npm run demo`: the main job on a throwaway data directory, narrated as a transcript. Every step
// runs the compiled binary exactly as a user would type it.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startUpstream } from "../test/support/upstream.ts";

const binary = resolve(import.meta.dir, "../dist/agent-vault");
const root = mkdtempSync(join(tmpdir(), "agent-vault-demo-"));
const home = join(root, "home");
const secret = `sk-demo-${crypto.randomUUID().slice(0, 8)}`;
const env: Record<string, string> = { ...(process.env as Record<string, string>), AGENT_VAULT_HOME: home, AGENT_VAULT_MASTER_PASSWORD: "demo password 123" };
// The demo's agent gets its key from run alone, not from the shell running the demo.
delete env.OPENAI_API_KEY;
for (const k of Object.keys(env)) if (k.startsWith("AGENT_VAULT_") && !["AGENT_VAULT_HOME", "AGENT_VAULT_MASTER_PASSWORD"].includes(k)) delete env[k];

const bold = (s: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[1m${s}\x1b[0m` : s);

async function step(title: string, args: string[], stdin?: string, extraEnv: Record<string, string> = {}): Promise<string> {
  if (title) console.log(`\n${bold(`# ${title}`)}`);
  console.log(`$ ${stdin !== undefined ? "echo '••••' | " : ""}agent-vault ${args.map((a) => (a.includes(" ") ? `'${a}'` : a)).join(" ")}`);
  const proc = Bun.spawn([binary, ...args], { env: { ...env, ...extraEnv }, stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  process.stdout.write(out + err);
  if (code !== 0) throw new Error(`agent-vault ${args[0]} exited ${code}`);
  return out + err;
}

try {
  console.log(`agent-vault demo: a throwaway data directory in ${home}`);
  console.log("(the master password comes from AGENT_VAULT_MASTER_PASSWORD, as a script would pass it)");
  await step("create the encrypted vault", ["init"]);
  await step(
    "store an API key; KEY=- reads it from stdin, so it is never in shell history",
    ["vault", "credential", "set", "OPENAI_API_KEY=-", "--description", "OpenAI key for the coding agent"],
    `${secret}\n`,
  );
  await step("and a second one", ["vault", "credential", "set", "GITHUB_TOKEN=ghp_demo_not_real", "--expires-in", "90d"]);
  const listed = await step("list credentials: metadata only, values masked", ["vault", "credential", "list"]);
  await step("attach them to hosts with catalog templates", ["vault", "service", "add", "--template", "openai"]);
  await step("", ["vault", "service", "add", "--template", "github"]); // same step, second service
  await step("the services the proxy will inject for", ["vault", "service", "list"]);
  const onDisk = readFileSync(join(home, "vault.av"), "utf8");
  console.log(`\n${bold("# what is on disk")}`);
  console.log(`vault.av is ${onDisk.length} bytes; the key appears in it: ${onDisk.includes(secret) ? "YES (bug!)" : "no (sealed with AES-256-GCM)"}`);
  console.log(`the key appears in the listing: ${listed.includes(secret) ? "YES (bug!)" : "no"}`);
  if (onDisk.includes(secret) || listed.includes(secret)) process.exitCode = 1;

  // The main job: an agent calls api.openai.com holding run's placeholder, the proxy attaches the key.
  // "api.openai.com" is served here by a local HTTPS server with its own test CA; AGENT_VAULT_CONNECT_TO
  // dials it instead of the internet while keeping the name for SNI, the certificate check and Host.
  const upstream = await startUpstream(root);
  upstream.handler = (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"object":"list","data":[{"id":"gpt-demo"}]}\n');
    return true;
  };
  const proxyEnv = { AGENT_VAULT_CONNECT_TO: `api.openai.com:443:127.0.0.1:${upstream.port}`, AGENT_VAULT_UPSTREAM_CA: upstream.caFile };
  // No key in the agent's environment to begin with: run puts a placeholder in OPENAI_API_KEY itself.
  const agentOutput = await step(
    "run an agent: run gives it a placeholder key (shaped like a real one); the proxy puts the real one in on the way out",
    ["run", "--", "sh", "-c", 'echo "agent sees OPENAI_API_KEY=$(printf %s "$OPENAI_API_KEY" | cut -c1-24)…"; curl -sS https://api.openai.com/v1/models -H "Authorization: Bearer $OPENAI_API_KEY"'],
    undefined,
    proxyEnv,
  );
  await upstream.close();
  const seen = upstream.received[0]?.headers.authorization;
  console.log(`\n${bold("# what reached api.openai.com")}`);
  console.log(`Authorization: ${seen === `Bearer ${secret}` ? `Bearer ${secret.slice(0, 8)}… (the real key from the vault)` : `UNEXPECTED: ${String(seen)}`}`);
  console.log(`the real key appears in the agent's output: ${agentOutput.includes(secret) ? "YES (bug!)" : "no"}`);
  if (seen !== `Bearer ${secret}` || agentOutput.includes(secret)) process.exitCode = 1;
  console.log("\nNext: agent-vault catalog lists templates for 40+ APIs; see README.md for every command.");
} finally {
  rmSync(root, { recursive: true, force: true });
}
