// `npm run demo`: the main job on a throwaway data directory, narrated as a transcript. Every step
// runs the compiled binary exactly as a user would type it.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const binary = resolve(import.meta.dir, "../dist/agent-vault");
const root = mkdtempSync(join(tmpdir(), "agent-vault-demo-"));
const home = join(root, "home");
const secret = `sk-demo-${crypto.randomUUID().slice(0, 8)}`;
const env: Record<string, string> = { ...(process.env as Record<string, string>), AGENT_VAULT_HOME: home, AGENT_VAULT_MASTER_PASSWORD: "demo password 123" };
for (const k of Object.keys(env)) if (k.startsWith("AGENT_VAULT_") && !["AGENT_VAULT_HOME", "AGENT_VAULT_MASTER_PASSWORD"].includes(k)) delete env[k];

const bold = (s: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[1m${s}\x1b[0m` : s);

async function step(title: string, args: string[], stdin?: string): Promise<string> {
  if (title) console.log(`\n${bold(`# ${title}`)}`);
  console.log(`$ ${stdin !== undefined ? "echo '••••' | " : ""}agent-vault ${args.join(" ")}`);
  const proc = Bun.spawn([binary, ...args], { env, stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  process.stdout.write(out + err);
  if (code !== 0) throw new Error(`agent-vault ${args[0]} exited ${code}`);
  return out + err;
}

try {
  console.log(`agent-vault demo: a throwaway data directory in ${home}`);
  console.log("(the master password comes from AGENT_VAULT_MASTER_PASSWORD, as a script would pass it)");
  await step("create the encrypted vault", ["init"]);
  await step("store an API key; KEY=- reads it from stdin, so it is never in shell history", ["vault", "credential", "set", "OPENAI_API_KEY=-", "--description", "OpenAI key for the coding agent"], `${secret}\n`);
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
  console.log("\nNext: agent-vault catalog lists templates for 40+ APIs; see README.md for every command.");
} finally {
  rmSync(root, { recursive: true, force: true });
}
