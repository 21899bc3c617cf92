// The server's proof that it is this data directory's server, asked before anything trusts the
// address in server.pid (a file the agent can rewrite). The client sends a fresh random nonce; the
// server answers with who it is (pid, host, ports) and HMAC-SHA256 over the nonce and those facts,
// under a key derived from the data key (VaultStore.serverProofKey). The client recomputes the MAC
// with the facts from server.pid and compares in constant time.
//
// Binding the pid and ports defeats a relay: a listener the agent planted can forward the nonce to
// the real server, but the real server signs its own pid and ports, not the planted ones.
import { type InboundRequest, type InboundResponse } from "../net/inbound.ts";
import { z } from "zod";
import { constantTimeEqual, hmacSha256 } from "../vault/crypto.ts";

export const PROOF_PATH = "/v1/server-proof";
const NONCE_PATTERN = /^[0-9a-f]{64}$/;

export const ServerFactsSchema = z
  .object({
    pid: z.number().int().positive(),
    host: z.string().max(255),
    api_port: z.number().int().min(1).max(65535),
    mitm_port: z.number().int().min(1).max(65535),
  })
  .strict();
export type ServerFacts = z.infer<typeof ServerFactsSchema>;

export const ProofAnswerSchema = ServerFactsSchema.extend({ mac: z.string().regex(/^[0-9a-f]{64}$/) }).strict();

export interface ProofSource {
  readonly key: Buffer;
  /** Null until both listeners are up. */
  facts(): ServerFacts | null;
}

function proofMessage(nonce: string, facts: ServerFacts): Buffer {
  return Buffer.from(`agent-vault/v1 server-proof|${nonce}|pid=${facts.pid}|host=${facts.host}|api=${facts.api_port}|mitm=${facts.mitm_port}`, "utf8");
}

export function computeProof(key: Buffer, nonce: string, facts: ServerFacts): string {
  return hmacSha256(key, proofMessage(nonce, facts)).toString("hex");
}

export function isProofValid(key: Buffer, nonce: string, expected: ServerFacts, mac: string): boolean {
  return constantTimeEqual(Buffer.from(computeProof(key, nonce, expected), "hex"), Buffer.from(mac, "hex"));
}

/** GET /v1/server-proof?nonce=HEX: no token needed; the answer is useless anywhere but here. */
export function answerProof(req: InboundRequest, res: InboundResponse, source: ProofSource | undefined): boolean {
  req.resume();
  const nonce = new URL(req.url ?? "/", "http://agent-vault").searchParams.get("nonce") ?? "";
  const facts = source?.facts() ?? null;
  if (!NONCE_PATTERN.test(nonce) || facts === null) return false;
  const body = JSON.stringify({ ...facts, mac: computeProof(source!.key, nonce, facts) });
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
  return true;
}
