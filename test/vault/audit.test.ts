// The audit trail (issue 16, item 2), in process against the real store: each kind of tampering is
// found and the first bad record named; a writer that finds its own last record gone links the
// next one to what it wrote, so the cut shows; rotation keeps the chain; a password change keeps
// old records verifiable; 10,000 records verify, and how long that takes.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { auditLogPath, verifyAudit, type AuditReport } from "../../src/vault/audit.ts";
import { setCredentials } from "../../src/vault/credentials.ts";
import { hmacSha256, sha256Hex } from "../../src/vault/crypto.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { PASSWORD, type TempVault, tempVault } from "../support/vault.ts";

let T: TempVault | null = null;
afterEach(() => {
  T?.cleanup();
  T = null;
  delete process.env.AGENT_VAULT_AUDIT_ANCHOR_MS;
  delete process.env.AGENT_VAULT_AUDIT_MAX_BYTES;
});

/** A store whose log holds `n` request records, all anchored. */
async function withRecords(n: number): Promise<TempVault> {
  const t = await tempVault();
  for (let i = 1; i <= n; i++)
    t.store.audit.record({
      kind: i % 2 ? "request_allowed" : "request_blocked",
      vault: "default",
      method: "GET",
      host: "api.example.com",
      path: `/r/${i}`,
      status: i % 2 ? 200 : 403,
      code: i % 2 ? null : "policy_denied",
    });
  await t.store.update(() => undefined);
  await t.store.audit.flush(); // one a refusal's prompt timer may have started meanwhile
  return t;
}

function verify(t: TempVault): AuditReport {
  const body = t.store.read();
  return verifyAudit(t.paths, t.store.auditKey(body, false), body.audit ?? null);
}

function lines(t: TempVault): string[] {
  return readFileSync(auditLogPath(t.paths), "utf8").split("\n").slice(0, -1);
}

function rewrite(t: TempVault, next: string[]): void {
  writeFileSync(auditLogPath(t.paths), `${next.join("\n")}\n`);
}

describe("an intact log", () => {
  test("verifies, every record anchored", async () => {
    T = await withRecords(20);
    const report = verify(T);
    expect(report.problem).toBeNull();
    expect(report.records).toBe(20);
    expect(report.anchor?.seq).toBe(20);
    expect(report.unanchored).toBe(0);
  });

  test("records what a vault change did, in the write that made it, and nothing of a change that failed", async () => {
    T = await tempVault();
    await setCredentials(T.store, "default", [{ key: "API_KEY", value: "canary-value-0123456789" }]);
    await expect(
      T.store.update(() => {
        T!.store.audit.record({ kind: "credential_deleted", vault: "default", keys: ["API_KEY"] });
        throw new Error("the change fails");
      }),
    ).rejects.toThrow();
    await T.store.update(() => undefined);
    const all = lines(T);
    expect(all).toHaveLength(1);
    expect(JSON.parse(all[0]!)).toMatchObject({ seq: 1, kind: "credential_set", keys: ["API_KEY"] });
    expect(all[0]).not.toContain("canary-value");
    expect(verify(T).anchor?.seq).toBe(1);
  });
});

describe("tampering is found, and the first bad record named", () => {
  test("a changed record fails its MAC", async () => {
    T = await withRecords(10);
    const all = lines(T);
    all[4] = all[4]!.replace('"request_allowed"', '"request_blocked"').replace('"status":200', '"status":403');
    rewrite(T, all);
    const { problem } = verify(T);
    expect(problem).toMatchObject({ line: 5, seq: 5 });
    expect(problem!.what).toContain("MAC");
  });

  test("a removed record", async () => {
    T = await withRecords(10);
    const all = lines(T);
    all.splice(4, 1);
    rewrite(T, all);
    const { problem } = verify(T);
    expect(problem).toMatchObject({ line: 5, seq: 6 });
    expect(problem!.what).toContain("expected record 5");
  });

  test("two records reordered", async () => {
    T = await withRecords(10);
    const all = lines(T);
    [all[4], all[5]] = [all[5]!, all[4]!];
    rewrite(T, all);
    expect(verify(T).problem).toMatchObject({ line: 5, seq: 6 });
  });

  test("a genuine record inserted again (a replay)", async () => {
    T = await withRecords(10);
    const all = lines(T);
    all.splice(4, 0, all[2]!);
    rewrite(T, all);
    const { problem } = verify(T);
    expect(problem).toMatchObject({ line: 5, seq: 3 });
    expect(problem!.what).toContain("inserted");
  });

  test("a forged record inserted, chained and MACed under a key the attacker made up", async () => {
    T = await withRecords(10);
    const all = lines(T);
    const prev = sha256Hex(all[3]!);
    const unsigned = JSON.stringify({ seq: 5, time: new Date().toISOString(), kind: "request_allowed", host: "api.example.com", prev });
    const mac = hmacSha256(Buffer.alloc(32, 7), Buffer.from(unsigned)).toString("hex");
    all.splice(4, 0, `${unsigned.slice(0, -1)},"mac":"${mac}"}`);
    rewrite(T, all);
    const { problem } = verify(T);
    expect(problem).toMatchObject({ line: 5, seq: 5 });
    expect(problem!.what).toContain("MAC");
  });

  test("a cut tail, against the vault's anchor", async () => {
    T = await withRecords(10);
    rewrite(T, lines(T).slice(0, 7));
    const { problem } = verify(T);
    expect(problem?.seq).toBe(8);
    expect(problem!.what).toContain("records 8..10 were cut");
  });

  test("the whole log removed", async () => {
    T = await withRecords(3);
    unlinkSync(auditLogPath(T.paths));
    expect(verify(T).problem?.what).toContain("records 1..3 were cut");
  });

  test("a half-written last line (a crash mid-append) is skipped, trimmed by the next writer, and hides no cut", async () => {
    T = await withRecords(3);
    const whole = lines(T);
    writeFileSync(auditLogPath(T.paths), `${whole.join("\n")}\n{"seq":4,`);
    expect(verify(T)).toMatchObject({ problem: null, records: 3, incomplete_tail: true });
    T.store.audit.record({ kind: "request_allowed", host: "api.example.com" });
    await T.store.update(() => undefined);
    expect(verify(T)).toMatchObject({ problem: null, records: 4, incomplete_tail: false });
    writeFileSync(auditLogPath(T.paths), `${whole.slice(0, 2).join("\n")}\n{"seq":3,`);
    expect(verify(T).problem?.what).toContain("records 3..4 were cut");
  });

  test("a tail cut before it was anchored: the writer links its next record to what it wrote, so the cut shows", async () => {
    T = await withRecords(3);
    process.env.AGENT_VAULT_AUDIT_ANCHOR_MS = "3600000";
    T.store.audit.record({ kind: "request_blocked", host: "evil.example", code: "policy_denied" });
    await T.store.audit.flush();
    expect(lines(T)).toHaveLength(4);
    expect(verify(T)).toMatchObject({ problem: null, unanchored: 1 });
    rewrite(T, lines(T).slice(0, 3)); // the agent removes its blocked request
    expect(verify(T).problem).toBeNull(); // unanchored and nobody wrote since: this is what a cut there costs
    T.store.audit.record({ kind: "request_allowed", host: "api.example.com" });
    await T.store.audit.flush();
    const { problem } = verify(T);
    expect(problem).toMatchObject({ line: 4, seq: 5 });
  });
});

describe("when records reach the file", () => {
  test("a refusal within milliseconds, allowed requests in the next batch (about a second)", async () => {
    T = await withRecords(1);
    process.env.AGENT_VAULT_AUDIT_ANCHOR_MS = "3600000";
    T.store.audit.record({ kind: "request_allowed", host: "api.example.com" });
    await Bun.sleep(300);
    expect(lines(T)).toHaveLength(1);
    T.store.audit.record({ kind: "request_blocked", host: "evil.example", code: "host_not_allowed" });
    await Bun.sleep(300);
    expect(lines(T).map((l) => JSON.parse(l).kind)).toEqual(["request_allowed", "request_allowed", "request_blocked"]);
  });
});

describe("what the agent plants at audit.log", () => {
  test("a directory is moved aside: the next vault change is made and recorded", async () => {
    T = await withRecords(2);
    const path = auditLogPath(T.paths);
    const kept = readFileSync(path, "utf8");
    unlinkSync(path);
    mkdirSync(path);
    await setCredentials(T.store, "default", [{ key: "AFTER_DIR", value: "value-12345678" }]);
    expect(readdirSync(T.paths.home).some((n) => /^audit\.log\.[0-9a-f]{8}\.planted$/.test(n))).toBe(true);
    expect(lines(T).map((l) => JSON.parse(l).keys?.[0])).toEqual(["AFTER_DIR"]);
    // The records before it went with the directory's place: verify says so.
    expect(verify(T).problem?.what).toContain("expected record 1 here");
    expect(kept).toContain('"seq":2');
  });
});

describe("two writers", () => {
  test("a cut that another process then numbered on from, and anchored, still shows when the first writes again", async () => {
    T = await withRecords(3);
    process.env.AGENT_VAULT_AUDIT_ANCHOR_MS = "3600000";
    T.store.audit.record({ kind: "request_blocked", host: "evil.example", code: "policy_denied" });
    await T.store.audit.flush();
    rewrite(T, lines(T).slice(0, 3));
    const other = await VaultStore.unlock(T.paths, async () => PASSWORD);
    await setCredentials(other, "default", [{ key: "LATER", value: "later-value-1234" }]);
    expect(verify(T).problem).toBeNull(); // the other writer took record 4's number, and anchored it
    T.store.audit.record({ kind: "request_allowed", host: "api.example.com" });
    await T.store.audit.flush({ anchor: true });
    const { problem } = verify(T);
    expect(problem).toMatchObject({ line: 5, seq: 5 });
    expect(problem!.what).toContain("does not link");
  });
});

describe("rotation", () => {
  test("keeps the chain across files, and a removed old file is found", async () => {
    T = await tempVault();
    process.env.AGENT_VAULT_AUDIT_MAX_BYTES = "4000";
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 8; i++) T.store.audit.record({ kind: "request_allowed", host: "api.example.com", path: `/x/${round}/${i}` });
      await T.store.update(() => undefined);
    }
    const rotated = readdirSync(T.paths.home)
      .filter((n) => /^audit\.\d{12}\.log$/.test(n))
      .sort();
    expect(rotated.length).toBeGreaterThan(1);
    expect(verify(T)).toMatchObject({ problem: null, records: 48 });
    unlinkSync(join(T.paths.home, rotated[0]!));
    expect(verify(T).problem?.what).toContain("expected record 1");
  });
});

describe("the audit key", () => {
  test("survives a master-password change: old records still verify, and the change is recorded", async () => {
    T = await withRecords(5);
    await T.store.setPassword("another password 123");
    const report = verify(T);
    expect(report.problem).toBeNull();
    expect(report.records).toBe(6);
    expect(JSON.parse(lines(T)[5]!)).toMatchObject({ kind: "master_password_changed", detail: "changed" });
  });
});

describe("scale", () => {
  test("a 10,000-record log verifies", async () => {
    T = await withRecords(10_000);
    const started = performance.now();
    const report = verify(T);
    const ms = performance.now() - started;
    expect(report.problem).toBeNull();
    expect(report.records).toBe(10_000);
    console.log(`audit verify: 10,000 records in ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(5_000);
  });
});
