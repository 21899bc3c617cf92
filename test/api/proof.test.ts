// The server proof: valid only for the nonce, key, pid, host and ports it was made for.
import { expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { computeProof, isProofValid } from "../../src/api/proof.ts";

const key = randomBytes(32);
const nonce = randomBytes(32).toString("hex");
const facts = { pid: 4242, host: "127.0.0.1", api_port: 14321, mitm_port: 14322 };

test("the proof verifies for exactly what it was made for", () => {
  const mac = computeProof(key, nonce, facts);
  expect(isProofValid(key, nonce, facts, mac)).toBe(true);
  expect(isProofValid(randomBytes(32), nonce, facts, mac)).toBe(false);
  expect(isProofValid(key, randomBytes(32).toString("hex"), facts, mac)).toBe(false);
  for (const other of [
    { ...facts, pid: 4243 },
    { ...facts, host: "127.0.0.2" },
    { ...facts, api_port: 1 },
    { ...facts, mitm_port: 1 },
  ]) {
    expect(isProofValid(key, nonce, other, mac)).toBe(false);
  }
  expect(isProofValid(key, nonce, facts, "00".repeat(32))).toBe(false);
});
