// Held requests in the vault (src/vault/held.ts) and approve entries of policies (policy.ts),
// without sockets: parsing, matching, one answer per record, the nonce the proxy waits on, the
// for-session allowance and the cap on waiting records.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AgentVaultError } from "../../src/shared/errors.ts";
import { parsePolicy } from "../../src/vault/agents.ts";
import { answerHeld, expireHeld, heldFor, type HeldRequest, holdRequest, isAllowedForSession, pendingHeld } from "../../src/vault/held.ts";
import { MAX_PENDING_HELD } from "../../src/vault/held.schema.ts";
import { approvalOf, describePolicy } from "../../src/vault/policy.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { tempVault, type TempVault } from "../support/vault.ts";

let V: TempVault;
let sessionId: string;

function request(overrides: Partial<HeldRequest> = {}): HeldRequest {
  return {
    vaultId: V.store.read().vaults[0]!.id,
    principal: sessionId,
    session: sessionId,
    agent: null,
    method: "POST",
    host: "api.github.com",
    port: 443,
    path: "/repos/x/merges",
    rule: "POST /repos/*/merges",
    bodySha256: "0".repeat(64),
    bodyBytes: 2,
    preview: "{}",
    timeoutMs: 60_000,
    ...overrides,
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "none";
  } catch (error) {
    return error instanceof AgentVaultError ? error.code : "other";
  }
}

beforeAll(async () => {
  V = await tempVault();
  sessionId = (await createSession(V.store, "default", {})).session.id;
});
afterAll(() => V.cleanup());

describe("approve entries of a policy", () => {
  const policy = parsePolicy({
    rules: [
      {
        service: "github",
        approve: [
          { methods: ["POST"], path: "/repos/*/merges" },
          { path: "/admin/*", timeout: "30s" },
        ],
      },
    ],
  });

  test("match by service, method and path; the default wait is 120 s, a rule's own timeout wins", () => {
    expect(approvalOf(policy, "github", "POST", "/repos/a/merges")).toEqual({ rule: "POST /repos/*/merges", timeoutMs: 120_000 });
    expect(approvalOf(policy, "github", "GET", "/repos/a/merges")).toBeNull();
    expect(approvalOf(policy, "github", "DELETE", "/admin/users?x=1")).toEqual({ rule: "/admin/*", timeoutMs: 30_000 });
    expect(approvalOf(policy, "stripe", "POST", "/repos/a/merges")).toBeNull();
    expect(approvalOf(policy, null, "POST", "/repos/a/merges")).toBeNull();
    // The path is normalized first, as for deny entries.
    expect(approvalOf(policy, "github", "POST", "/repos/a/../b/merges")).not.toBeNull();
  });

  test("are shown by agent info and run", () => {
    expect(describePolicy(policy).join("\n")).toContain("hold for approval POST /repos/*/merges");
    expect(describePolicy(policy).join("\n")).toContain("hold for approval /admin/* (waits 30s)");
  });

  test("a bad timeout or method is refused with the field named", () => {
    for (const bad of [{ path: "/x", timeout: "2 hours" }, { path: "/x", timeout: "2h" }, { path: "x" }, { methods: ["post"], path: "/x" }, { path: "/x", extra: 1 }]) {
      expect(() => parsePolicy({ rules: [{ service: "github", approve: [bad] }] })).toThrow(/approve/);
    }
  });
});

describe("held records", () => {
  test("a person answers once; a second answer, an unknown id, or a timed-out one is refused", async () => {
    const held = await holdRequest(V.store, request());
    expect(held.status).toBe("pending");
    expect(held.nonce).toMatch(/^[0-9a-f]{32}$/);
    const allowed = await answerHeld(V.store, "default", held.id, { allow: true, forSession: false }, "cli:test");
    expect(allowed).toMatchObject({ status: "allowed", answered_by: "cli:test", for_session: false });
    expect(await codeOf(answerHeld(V.store, "default", held.id, { allow: false, reason: "" }, "cli:test"))).toBe("conflict");
    expect(await codeOf(answerHeld(V.store, "default", 9999, { allow: true, forSession: false }, "cli:test"))).toBe("not_found");
    const old = await holdRequest(V.store, request({ timeoutMs: 1 }));
    await Bun.sleep(5);
    expect(await codeOf(answerHeld(V.store, "default", old.id, { allow: true, forSession: false }, "cli:test"))).toBe("conflict");
  });

  test("the proxy reads an answer only off a record with its nonce; it marks its own timeout", async () => {
    const held = await holdRequest(V.store, request({ path: "/repos/n/merges" }));
    const vaultId = request().vaultId;
    expect(heldFor(V.store.read(), vaultId, held.id, held.nonce)?.status).toBe("pending");
    expect(heldFor(V.store.read(), vaultId, held.id, "f".repeat(32))).toBeNull();
    expect((await expireHeld(V.store, vaultId, held.id, held.nonce))?.status).toBe("timeout");
    expect(await expireHeld(V.store, vaultId, held.id, "f".repeat(32))).toBeNull();
  });

  test("ids are never reused", async () => {
    const a = await holdRequest(V.store, request());
    const b = await holdRequest(V.store, request());
    expect(b.id).toBe(a.id + 1);
  });

  test("allowed for the session: the same session, method, host and rule only", async () => {
    const held = await holdRequest(V.store, request({ path: "/repos/s/merges" }));
    await answerHeld(V.store, "default", held.id, { allow: true, forSession: true }, "tui:test");
    const vault = V.store.read().vaults[0]!;
    expect(isAllowedForSession(vault, sessionId, "POST", "api.github.com", "POST /repos/*/merges")).toBe(true);
    expect(isAllowedForSession(vault, "s_000000000000", "POST", "api.github.com", "POST /repos/*/merges")).toBe(false);
    expect(isAllowedForSession(vault, sessionId, "PUT", "api.github.com", "POST /repos/*/merges")).toBe(false);
    expect(isAllowedForSession(vault, sessionId, "POST", "uploads.github.com", "POST /repos/*/merges")).toBe(false);
    expect(isAllowedForSession(vault, sessionId, "POST", "api.github.com", "/admin/*")).toBe(false);
    expect(isAllowedForSession(vault, null, "POST", "api.github.com", "POST /repos/*/merges")).toBe(false);
  });

  test(`at most ${MAX_PENDING_HELD} wait at once per vault: more are refused (approval_denied), nothing written`, async () => {
    const waiting = pendingHeld(V.store.read().vaults[0]!).length;
    for (let i = waiting; i < MAX_PENDING_HELD; i++) await holdRequest(V.store, request({ path: `/repos/${i}/merges` }));
    expect(await codeOf(holdRequest(V.store, request({ path: "/repos/over/merges" })))).toBe("approval_denied");
    expect(V.store.read().vaults[0]!.held.some((h) => h.path === "/repos/over/merges")).toBe(false);
  });
});
