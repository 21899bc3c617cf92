// Asks whatever listens at the address in server.pid to prove it is this data directory's server
// (src/api/proof.ts) before `run` points an agent and its token at it, or `server stop` signals it.
// Nothing secret is sent: a nonce goes out, a MAC comes back.
import { randomBytes } from "node:crypto";
import http from "node:http";
import { isProofValid, PROOF_PATH, ProofAnswerSchema } from "../api/proof.ts";
import { AgentVaultError } from "../shared/errors.ts";
import { isProcessAlive } from "../shared/liveness.ts";
import { type VaultStore } from "../vault/vault.ts";
import { type PidFile, readPidFile, removePidFile } from "./pidfile.ts";

export type ServerCheck = { readonly kind: "verified" } | { readonly kind: "absent" } | { readonly kind: "impostor"; readonly why: string };

const TIMEOUT_MS = 2000;
const MAX_ANSWER_BYTES = 4096;

/** One GET over node:http (fetch would honour HTTP_PROXY, and this must reach loopback directly). */
function getJson(host: string, port: number, path: string): Promise<{ status: number; body: string } | { error: string; refused: boolean }> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, timeout: TIMEOUT_MS, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) {
          req.destroy();
          resolve({ error: "its answer is too large", refused: false });
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", () => resolve({ error: "its answer broke off", refused: false }));
    });
    req.on("error", (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? "connection failed", refused: error.code === "ECONNREFUSED" }));
    req.on("timeout", () => {
      req.destroy();
      resolve({ error: "it did not answer in time", refused: false });
    });
  });
}

export async function checkServer(store: VaultStore, record: PidFile): Promise<ServerCheck> {
  const nonce = randomBytes(32).toString("hex");
  const answer = await getJson(record.host, record.api_port, `${PROOF_PATH}?nonce=${nonce}`);
  // Nothing listens there: a stale pidfile of a server that died.
  if ("error" in answer) return answer.refused ? { kind: "absent" } : { kind: "impostor", why: answer.error };
  if (answer.status !== 200) return { kind: "impostor", why: `it answered ${answer.status} to the challenge` };
  let parsed;
  try {
    parsed = ProofAnswerSchema.parse(JSON.parse(answer.body));
  } catch {
    return { kind: "impostor", why: "its answer to the challenge is malformed" };
  }
  const expected = { pid: record.pid, host: record.host, api_port: record.api_port, mitm_port: record.mitm_port };
  if (!isProofValid(store.serverProofKey(), nonce, expected, parsed.mac)) return { kind: "impostor", why: "its proof does not verify" };
  return { kind: "verified" };
}

/**
 * Stops this data directory's server: only a process that proves it holds this vault's key, at
 * the pid and address in the pidfile, is signalled (the pidfile can be planted). Throws
 * server_not_running or server_not_verified; returns the pid it stopped.
 */
export async function stopVerifiedServer(store: VaultStore): Promise<number> {
  const paths = store.paths;
  const record = readPidFile(paths);
  if (!record || !isProcessAlive(record.pid)) {
    removePidFile(paths);
    throw new AgentVaultError("server_not_running", `no agent-vault server is running for ${paths.home}`);
  }
  const check = await checkServer(store, record);
  if (check.kind === "absent") {
    removePidFile(paths);
    throw new AgentVaultError("server_not_running", `no agent-vault server is running for ${paths.home}`);
  }
  if (check.kind === "impostor") {
    throw new AgentVaultError("server_not_verified", `pid ${record.pid} in ${paths.pidFile} did not prove it is this vault's server (${check.why}); not signalling it`);
  }
  process.kill(record.pid, "SIGTERM");
  const deadline = Date.now() + 5000;
  while (isProcessAlive(record.pid)) {
    if (Date.now() > deadline) throw new AgentVaultError("io_error", `the server (pid ${record.pid}) did not stop within 5s`);
    await Bun.sleep(50);
  }
  return record.pid;
}
