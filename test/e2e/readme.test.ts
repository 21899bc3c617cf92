// The README's examples, run as written. A shell block is runnable when the line before its fence
// is `<!-- test -->`: those blocks run in document order, each in `bash -e -o pipefail`, sharing one
// fresh home with the binary on PATH as `agent-vault` (and, as a reader would have after the
// README's `init`, a vault unlocked by AGENT_VAULT_MASTER_PASSWORD). Blocks that need the internet,
// sudo, a real agent or a terminal (the quick start's npm install, `run -- codex`, the prompts,
// the system CA stores) are left unmarked.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BINARY, cleanEnv, TEST_PASSWORD } from "../support/binary.ts";

const README = resolve(import.meta.dir, "../../README.md");
const MARKER = "<!-- test -->";

interface Block {
  readonly line: number;
  readonly text: string;
}

/** The marked blocks; a marker not followed by a ```sh fence is an error in the README. */
function runnableBlocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== MARKER) continue;
    if (lines[i + 1] !== "```sh") throw new Error(`README.md:${i + 1}: ${MARKER} must be followed by a \`\`\`sh fence`);
    const end = lines.indexOf("```", i + 2);
    if (end === -1) throw new Error(`README.md:${i + 2}: the block never closes`);
    blocks.push({ line: i + 3, text: lines.slice(i + 2, end).join("\n") });
  }
  return blocks;
}

setDefaultTimeout(120_000);
const dir = mkdtempSync(join(tmpdir(), "av-readme-"));
const home = join(dir, "home");
const bin = join(dir, "bin");
// The reader's environment: a home of their own, the binary on PATH, no CA variables of this machine.
const env = cleanEnv({
  HOME: home,
  PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`,
  AGENT_VAULT_MASTER_PASSWORD: TEST_PASSWORD,
  AGENT_VAULT_INSECURE_TEST_KDF: "1",
  ...Object.fromEntries(
    [
      "SSL_CERT_FILE",
      "NODE_EXTRA_CA_CERTS",
      "REQUESTS_CA_BUNDLE",
      "CURL_CA_BUNDLE",
      "GIT_SSL_CAINFO",
      "PIP_CERT",
      "AWS_CA_BUNDLE",
      "HTTPLIB2_CA_CERTS",
      "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
      "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
      "NIX_SSL_CERT_FILE",
    ].map((n) => [n, undefined]),
  ),
});

beforeAll(() => {
  mkdirSync(home);
  mkdirSync(bin);
  copyFileSync(BINARY, join(bin, "agent-vault"));
  const init = Bun.spawnSync(["agent-vault", "init"], { env, cwd: home, stdout: "pipe", stderr: "pipe" });
  if (init.exitCode !== 0) throw new Error(`init failed: ${init.stderr.toString()}`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the README marks its runnable blocks, each right before a ```sh fence", () => {
  const blocks = runnableBlocks(readFileSync(README, "utf8"));
  expect(blocks.length).toBeGreaterThanOrEqual(8);
});

test("every runnable README block runs as written, in order", () => {
  const failures: string[] = [];
  for (const block of runnableBlocks(readFileSync(README, "utf8"))) {
    const r = Bun.spawnSync(["bash", "-e", "-o", "pipefail", "-c", block.text], { env, cwd: home, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) failures.push(`README.md:${block.line}: exit ${r.exitCode}\n${block.text}\n--- stdout\n${r.stdout.toString().slice(-2000)}\n--- stderr\n${r.stderr.toString().slice(-2000)}`);
  }
  expect(failures.join("\n\n")).toBe("");
  // The last block uninstalls: the data directory and the binary are gone.
  expect(Bun.spawnSync(["bash", "-c", "command -v agent-vault || test -e ~/.agent-vault"], { env }).exitCode).not.toBe(0);
});
