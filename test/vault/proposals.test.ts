// In-process tests of proposals (DESIGN "Proposals", issue 4): the strict input schema and every
// rule a 400 names, filing (sealed agent values, references, the 20-pending cap, 7-day expiry with
// an explicit `now`), approval (one write, all or nothing, decided once, also under a race) and
// rejection. The compiled binary and the agent API are covered in test/e2e/proposals.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { AgentVaultError } from "../../src/shared/errors.ts";
import { getCredentialValue, setCredentials } from "../../src/vault/credentials.ts";
import { MAX_PENDING_PROPOSALS, type Proposal, PROPOSAL_TTL_MS } from "../../src/vault/proposal.schema.ts";
import { agentSuppliedValue, approveProposal, fileProposal, parseProposalInput, proposalView, rejectProposal, slotsNeedingValues, statusOf } from "../../src/vault/proposals.ts";
import { addService, parseServiceInput } from "../../src/vault/services.ts";
import { createVault, findVault } from "../../src/vault/vaults.ts";
import { tempVault, type TempVault } from "../support/vault.ts";

let fixture: TempVault | undefined;
afterEach(() => {
  fixture?.cleanup();
  fixture = undefined;
});

async function fresh(): Promise<TempVault> {
  fixture = await tempVault();
  return fixture;
}

const bytes = (f: TempVault) => readFileSync(f.paths.stateFile);
const vaultOf = (f: TempVault, name = "default") => findVault(f.store.read(), name);

/** The error a call throws (sync or async), or a failure if it does not throw. */
async function thrown(fn: () => unknown): Promise<AgentVaultError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AgentVaultError);
    return error as AgentVaultError;
  }
  throw new Error("expected an AgentVaultError, nothing was thrown");
}

const CRED = { action: "set", key: "NEW_KEY", description: "a new key", obtain: "https://example.com/keys", obtain_instructions: "Settings > Keys" };
const SVC = { action: "set", name: "newsvc", host: "api.new.example.com", auth: { type: "bearer", token: "NEW_KEY" } };
const VALID = { services: [SVC], credentials: [CRED], message: "need it" };

// ---------------------------------------------------------------------------------------------

describe("proposal schema", () => {
  test("the design's example parses, with defaults filled in", () => {
    const input = parseProposalInput({
      services: [{ action: "set", name: "stripe", host: "api.stripe.com", auth: { type: "bearer", token: "STRIPE_KEY" } }],
      credentials: [
        { action: "set", key: "STRIPE_KEY", description: "Stripe API key", obtain: "https://dashboard.stripe.com/apikeys", obtain_instructions: "Developers > API Keys > Reveal test key" },
      ],
      message: "Need Stripe to create a test customer",
    });
    expect(input.services).toHaveLength(1);
    const slot = input.credentials[0]!;
    expect(slot.action === "set" && slot.type).toBe("static");
    expect(parseProposalInput({ credentials: [{ action: "delete", key: "OLD_API_KEY" }] })).toEqual({ services: [], credentials: [{ action: "delete", key: "OLD_API_KEY" }], message: "" });
  });

  test("every documented shape is accepted: oauth (connect and paste), agent value, deletes, user_message, every auth type, host forms", () => {
    const ok = [
      {
        credentials: [
          {
            action: "set",
            key: "GITHUB",
            type: "oauth",
            description: "GitHub OAuth",
            oauth: { authorization_url: "https://github.com/login/oauth/authorize", token_url: "https://github.com/login/oauth/access_token", scopes: "repo user" },
            obtain_instructions: "x",
          },
        ],
      },
      { credentials: [{ action: "set", key: "PASTE", type: "oauth", oauth: { token_url: "http://localhost:9/token", client_id: "abc", token_auth_method: "none" } }] },
      { credentials: [{ action: "set", key: "GENERATED_TOKEN", description: "Token generated during setup", value: "tok_abc123" }] },
      { services: [{ action: "delete", name: "old" }], credentials: [{ action: "delete", key: "OLD_API_KEY" }], message: "Remove unused API key", user_message: "for you" },
      {
        services: [
          { action: "set", name: "b", host: "*.example.com", auth: { type: "basic", username: "U", password: "P" } },
          { action: "set", name: "k", host: "api.example.com:8443", auth: { type: "api-key", key: "U", header: "X-Key", prefix: "Token " } },
          { action: "set", name: "c", host: "slack.com/api/*", auth: { type: "custom", headers: { "X-A": "a {{ U }} b" } } },
          { action: "set", name: "q", host: "maps.example.com", auth: { type: "query", param: "key", key: "P" } },
          { action: "set", name: "p", host: "pass.example.com", auth: { type: "passthrough" }, enabled: false, description: "d" },
        ],
        credentials: [
          { action: "set", key: "U" },
          { action: "set", key: "P" },
        ],
      },
      // The limits themselves are allowed.
      { services: Array.from({ length: 10 }, (_, i) => ({ ...SVC, name: `s${i}` })), credentials: Array.from({ length: 10 }, (_, i) => ({ action: "set", key: i === 0 ? "NEW_KEY" : `K${i}` })) },
      { credentials: [{ ...CRED, description: "d".repeat(500), obtain_instructions: "i".repeat(2000), value: "v".repeat(65_536) }], message: "m".repeat(2000), user_message: "u".repeat(2000) },
    ];
    for (const body of ok) expect(() => parseProposalInput(body), JSON.stringify(body).slice(0, 200)).not.toThrow();
  });

  // [what, body, the field a 400 must name]
  const RULES: [string, unknown, string][] = [
    ["not an object (null)", null, "(root)"],
    ["not an object (array)", [VALID], "(root)"],
    ["not an object (string)", "proposal", "(root)"],
    ["empty proposal", {}, "services"],
    ["empty arrays", { services: [], credentials: [], message: "hi" }, "services"],
    ["11 services", { services: Array.from({ length: 11 }, (_, i) => ({ ...SVC, name: `s${i}` })), credentials: [CRED] }, "services"],
    ["11 credential slots", { credentials: Array.from({ length: 11 }, (_, i) => ({ action: "set", key: `K${i}` })) }, "credentials"],
    ["services not an array", { services: {}, credentials: [CRED] }, "services"],
    ["message too long", { ...VALID, message: "x".repeat(2001) }, "message"],
    ["message not a string", { ...VALID, message: 42 }, "message"],
    ["user_message too long", { ...VALID, user_message: "x".repeat(2001) }, "user_message"],
    ["description too long", { credentials: [{ ...CRED, description: "x".repeat(501) }] }, "credentials[0].description"],
    ["obtain_instructions too long", { credentials: [{ ...CRED, obtain_instructions: "x".repeat(2001) }] }, "credentials[0].obtain_instructions"],
    ["obtain too long", { credentials: [{ ...CRED, obtain: `https://example.com/${"x".repeat(2048)}` }] }, "credentials[0].obtain"],
    ["value too long", { credentials: [{ ...CRED, value: "x".repeat(65_537) }] }, "credentials[0].value"],
    ["value empty", { credentials: [{ ...CRED, value: "" }] }, "credentials[0].value"],
    ["service description too long", { services: [{ ...SVC, description: "x".repeat(501) }], credentials: [CRED] }, "services[0].description"],
    ["oauth scopes too long", { credentials: [{ action: "set", key: "O", type: "oauth", oauth: { token_url: "https://x.example/t", scopes: "s".repeat(1001) } }] }, "credentials[0].oauth.scopes"],
    ["key too long", { credentials: [{ ...CRED, key: `K${"X".repeat(128)}` }] }, "credentials[0].key"],
    ["key lower case", { credentials: [{ ...CRED, key: "new_key" }] }, "credentials[0].key"],
    ["key starting with a digit", { credentials: [{ ...CRED, key: "1KEY" }] }, "credentials[0].key"],
    ["key with a dash", { credentials: [{ ...CRED, key: "NEW-KEY" }] }, "credentials[0].key"],
    ["delete slot with a bad key", { credentials: [{ action: "delete", key: "bad key" }] }, "credentials[0].key"],
    ["auth naming a bad key", { services: [{ ...SVC, auth: { type: "bearer", token: "lower" } }], credentials: [CRED] }, "services[0].auth.token"],
    ["service name upper case", { services: [{ ...SVC, name: "NewSvc" }], credentials: [CRED] }, "services[0].name"],
    ["host with a scheme", { services: [{ ...SVC, host: "https://api.new.example.com" }], credentials: [CRED] }, "services[0].host"],
    ["host empty", { services: [{ ...SVC, host: "" }], credentials: [CRED] }, "services[0].host"],
    ["host double wildcard", { services: [{ ...SVC, host: "*.*.example.com" }], credentials: [CRED] }, "services[0].host"],
    ["host inner wildcard", { services: [{ ...SVC, host: "a.*.example.com" }], credentials: [CRED] }, "services[0].host"],
    ["host bare wildcard on a TLD", { services: [{ ...SVC, host: "*.com" }], credentials: [CRED] }, "services[0].host"],
    ["host bad port", { services: [{ ...SVC, host: "api.example.com:99999" }], credentials: [CRED] }, "services[0].host"],
    ["host trailing dot", { services: [{ ...SVC, host: "api.example.com." }], credentials: [CRED] }, "services[0].host"],
    ["host with user info", { services: [{ ...SVC, host: "user@api.example.com" }], credentials: [CRED] }, "services[0].host"],
    ["host with spaces", { services: [{ ...SVC, host: "api example.com" }], credentials: [CRED] }, "services[0].host"],
    ["host with a query", { services: [{ ...SVC, host: "api.example.com?x=1" }], credentials: [CRED] }, "services[0].host"],
    ["host not a string", { services: [{ ...SVC, host: 7 }], credentials: [CRED] }, "services[0].host"],
    ["obtain javascript:", { credentials: [{ ...CRED, obtain: "javascript:alert(1)" }] }, "credentials[0].obtain"],
    ["obtain ftp:", { credentials: [{ ...CRED, obtain: "ftp://example.com/key" }] }, "credentials[0].obtain"],
    ["obtain not a URL", { credentials: [{ ...CRED, obtain: "dashboard.example.com/keys" }] }, "credentials[0].obtain"],
    ["oauth token_url file:", { credentials: [{ action: "set", key: "O", type: "oauth", oauth: { token_url: "file:///etc/passwd" } }] }, "credentials[0].oauth.token_url"],
    [
      "oauth authorization_url data:",
      { credentials: [{ action: "set", key: "O", type: "oauth", oauth: { token_url: "https://x.example/t", authorization_url: "data:text/html,x" } }] },
      "credentials[0].oauth.authorization_url",
    ],
    ["oauth without token_url", { credentials: [{ action: "set", key: "O", type: "oauth", oauth: {} }] }, "credentials[0].oauth.token_url"],
    [
      "oauth bad token_auth_method",
      { credentials: [{ action: "set", key: "O", type: "oauth", oauth: { token_url: "https://x.example/t", token_auth_method: "magic" } }] },
      "credentials[0].oauth.token_auth_method",
    ],
    ["type oauth without oauth object", { credentials: [{ ...CRED, type: "oauth" }] }, "credentials[0].oauth"],
    ["oauth object on a static slot", { credentials: [{ ...CRED, oauth: { token_url: "https://x.example/t" } }] }, "credentials[0].oauth"],
    ["value on an oauth slot", { credentials: [{ action: "set", key: "O", type: "oauth", value: "tok", oauth: { token_url: "https://x.example/t" } }] }, "credentials[0].value"],
    ["unknown type", { credentials: [{ ...CRED, type: "secret" }] }, "credentials[0].type"],
    ["unknown action", { credentials: [{ ...CRED, action: "update" }] }, "credentials[0].action"],
    ["missing action", { credentials: [{ key: "NEW_KEY" }] }, "credentials[0].action"],
    ["unknown auth type", { services: [{ ...SVC, auth: { type: "oauth2" } }], credentials: [CRED] }, "services[0].auth.type"],
    ["duplicate service names", { services: [SVC, { ...SVC, host: "other.example.com" }], credentials: [CRED] }, "services[1].name"],
    ["set and delete of one service", { services: [SVC, { action: "delete", name: "newsvc" }], credentials: [CRED] }, "services[1].name"],
    ["duplicate credential keys", { services: [SVC], credentials: [CRED, { ...CRED, description: "again" }] }, "credentials[1].key"],
    ["set and delete of one key", { services: [SVC], credentials: [CRED, { action: "delete", key: "NEW_KEY" }] }, "credentials[1].key"],
  ];

  for (const [what, body, field] of RULES) {
    test(`400 naming "${field}": ${what}`, async () => {
      const error = await thrown(() => parseProposalInput(body));
      expect(error.code).toBe("invalid_request");
      expect(error.httpStatus).toBe(400);
      expect(error.details?.field).toBe(field);
      expect(error.message.startsWith(`${field}: `)).toBe(true);
    });
  }

  // Strict objects: an unknown field is refused, and the 400 should say which one.
  const UNKNOWN: [string, unknown, string, string][] = [
    ["top level", { ...VALID, priority: "high" }, "(root)", "priority"],
    ["service", { services: [{ ...SVC, region: "eu" }], credentials: [CRED] }, "services[0]", "region"],
    ["service delete", { services: [{ action: "delete", name: "x", host: "x.example.com" }] }, "services[0]", "host"],
    ["auth", { services: [{ ...SVC, auth: { type: "bearer", token: "NEW_KEY", scheme: "Token" } }], credentials: [CRED] }, "services[0].auth", "scheme"],
    ["credential slot", { credentials: [{ ...CRED, secret: "x" }] }, "credentials[0]", "secret"],
    ["delete slot (only key)", { credentials: [{ action: "delete", key: "OLD", description: "bye" }] }, "credentials[0]", "description"],
    ["oauth object", { credentials: [{ action: "set", key: "O", type: "oauth", oauth: { token_url: "https://x.example/t", client_secret: "s" } }] }, "credentials[0].oauth", "client_secret"],
    ["__proto__ key", JSON.parse('{"credentials":[{"action":"set","key":"A"}],"__proto__":{"polluted":1}}'), "(root)", "__proto__"],
  ];
  for (const [where, body, container, key] of UNKNOWN) {
    test(`unknown field in ${where} is refused (strict) and named`, async () => {
      const error = await thrown(() => parseProposalInput(body));
      expect(error.code).toBe("invalid_request");
      expect(error.message).toContain(key);
      expect(String(error.details?.field)).toStartWith(container === "(root)" ? "" : container);
    });
  }

  test("the `field` of an unknown-field 400 names the unknown field itself, not only its parent", async () => {
    // An agent fixing its proposal reads `field`; "(root)" or "services[0]" does not say what to drop.
    const misses: string[] = [];
    for (const [where, body, , key] of UNKNOWN) {
      const error = await thrown(() => parseProposalInput(body));
      if (!String(error.details?.field).includes(key)) misses.push(`${where}: field=${JSON.stringify(error.details?.field)} (unknown key "${key}")`);
    }
    expect(misses).toEqual([]);
  });

  test("a parse never yields the prototype of a polluted object", () => {
    const parsed = JSON.parse(
      '{"services":[{"action":"set","name":"c","host":"c.example.com","auth":{"type":"custom","headers":{"__proto__":"x {{ K }}","X-A":"{{ K }}"}}}],"credentials":[{"action":"set","key":"K"}]}',
    );
    let result: unknown;
    try {
      result = parseProposalInput(parsed);
    } catch (error) {
      expect((error as AgentVaultError).code).toBe("invalid_request");
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    if (result) expect(Object.getPrototypeOf((result as { services: { auth: { headers: object } }[] }).services[0]!.auth.headers)).toBe(Object.prototype);
  });
});

// ---------------------------------------------------------------------------------------------

describe("filing", () => {
  test("a filed proposal is pending, numbered, expires in 7 days, audited as filed by its session", async () => {
    const f = await fresh();
    const now = Date.parse("2030-01-01T00:00:00.000Z");
    const p = await fileProposal(f.store, "default", parseProposalInput(VALID), "s_0123456789ab", now);
    expect(p.id).toBe(1);
    expect(p.status).toBe("pending");
    expect(p.created_at).toBe("2030-01-01T00:00:00.000Z");
    expect(Date.parse(p.expires_at) - now).toBe(PROPOSAL_TTL_MS);
    expect(PROPOSAL_TTL_MS).toBe(7 * 86_400_000);
    expect(p.audit).toEqual([{ at: "2030-01-01T00:00:00.000Z", action: "filed", by: "session s_0123456789ab" }]);
    const p2 = await fileProposal(f.store, "default", parseProposalInput({ credentials: [{ action: "set", key: "B" }] }), null, now);
    expect(p2.id).toBe(2);
    expect(p2.audit[0]!.by).toBe("cli");
    const stored = vaultOf(f).proposals;
    expect(stored.map((x) => x.id)).toEqual([1, 2]);
    expect(vaultOf(f).proposal_seq).toBe(2);
    // Filing changes nothing else.
    expect(Object.keys(vaultOf(f).credentials)).toEqual([]);
    expect(vaultOf(f).services).toEqual([]);
  });

  test("numbers are per vault and never reused", async () => {
    const f = await fresh();
    await f.store.update((body) => void createVault(body, "other"));
    const a = await fileProposal(f.store, "default", parseProposalInput(VALID), null);
    const b = await fileProposal(f.store, "other", parseProposalInput(VALID), null);
    expect([a.id, b.id]).toEqual([1, 1]);
    await rejectProposal(f.store, "default", 1, "", "t");
    // Even if decided proposals were pruned, the sequence continues.
    await f.store.update((body) => {
      findVault(body, "default").proposals = [];
    });
    expect((await fileProposal(f.store, "default", parseProposalInput(VALID), null)).id).toBe(2);
  });

  test("an agent-supplied value is sealed at once: not in the file, not in a view, readable only for masked review", async () => {
    const f = await fresh();
    const secret = `tok_${crypto.randomUUID()}`;
    const p = await fileProposal(f.store, "default", parseProposalInput({ credentials: [{ action: "set", key: "GEN", value: secret }] }), "s_0123456789ab");
    expect(bytes(f).includes(Buffer.from(secret))).toBe(false);
    expect(bytes(f).includes(Buffer.from(Buffer.from(secret).toString("base64")))).toBe(false);
    expect(JSON.stringify(f.store.read())).not.toContain(secret);
    const slot = vaultOf(f).proposals[0]!.credentials[0]!;
    expect(slot.action === "set" && typeof slot.sealed_value).toBe("string");
    expect(slot).not.toHaveProperty("value");
    const view = proposalView(vaultOf(f).proposals[0]!);
    expect(JSON.stringify(view)).not.toContain(secret);
    expect(JSON.stringify(view)).not.toContain("sealed_value");
    expect(view.credentials[0]).toMatchObject({ key: "GEN", has_value: true });
    expect(JSON.stringify(p)).not.toContain(secret);
    expect(agentSuppliedValue(f.store, vaultOf(f), vaultOf(f).proposals[0]!, "GEN")).toBe(secret);
    expect(slotsNeedingValues(vaultOf(f).proposals[0]!)).toEqual([]);
  });

  test("a sealed value is bound to its proposal and key: moved to another slot it does not open", async () => {
    const f = await fresh();
    await fileProposal(
      f.store,
      "default",
      parseProposalInput({
        credentials: [
          { action: "set", key: "GEN", value: "v1-secret" },
          { action: "set", key: "OTHER" },
        ],
      }),
      null,
    );
    const p = vaultOf(f).proposals[0]!;
    const sealed = (p.credentials[0] as { sealed_value: string }).sealed_value;
    const moved: Proposal = { ...p, credentials: [p.credentials[0]!, { ...(p.credentials[1] as object), sealed_value: sealed } as Proposal["credentials"][number]] };
    expect((await thrown(() => agentSuppliedValue(f.store, vaultOf(f), moved, "OTHER"))).code).toBe("vault_corrupt");
  });

  test("references: a service may name a key in the vault or one the proposal sets, nothing else", async () => {
    const f = await fresh();
    await setCredentials(f.store, "default", [{ key: "HAVE", value: "h" }]);
    const svc = (token: string) => ({ action: "set", name: "s", host: "s.example.com", auth: { type: "bearer", token } });
    await fileProposal(f.store, "default", parseProposalInput({ services: [svc("HAVE")] }), null);
    await fileProposal(f.store, "default", parseProposalInput({ services: [svc("NEW")], credentials: [{ action: "set", key: "NEW" }] }), null);
    const before = bytes(f);
    for (const [body, field] of [
      [{ services: [svc("NOPE")] }, "services[0].auth"],
      [{ services: [svc("HAVE")], credentials: [{ action: "delete", key: "HAVE" }] }, "services[0].auth"],
      [{ services: [{ action: "set", name: "c", host: "c.example.com", auth: { type: "custom", headers: { "X-A": "{{ HAVE }}", "X-B": "{{ MISSING_TOO }}" } } }] }, "services[0].auth"],
      [{ services: [svc("HAVE"), { action: "set", name: "b", host: "b.example.com", auth: { type: "basic", username: "HAVE", password: "NOPE" } }] }, "services[1].auth"],
    ] as const) {
      const error = await thrown(() => fileProposal(f.store, "default", parseProposalInput(body), null));
      expect(error.code).toBe("invalid_request");
      expect(error.details?.field).toBe(field);
    }
    expect(bytes(f).equals(before)).toBe(true);
    // Delete slots need only a key, present or not; a service delete names no keys.
    await fileProposal(f.store, "default", parseProposalInput({ services: [{ action: "delete", name: "ghost" }], credentials: [{ action: "delete", key: "GHOST" }] }), null);
  });

  test(`at most ${MAX_PENDING_PROPOSALS} pending per vault: the 21st is refused and nothing is written`, async () => {
    const f = await fresh();
    await f.store.update((body) => void createVault(body, "other"));
    const t0 = Date.parse("2030-01-01T00:00:00.000Z");
    for (let i = 0; i < MAX_PENDING_PROPOSALS; i++) await fileProposal(f.store, "default", parseProposalInput(VALID), null, t0 + i);
    const before = bytes(f);
    const error = await thrown(() => fileProposal(f.store, "default", parseProposalInput(VALID), null, t0 + 100));
    expect(error.code).toBe("too_many_pending_proposals");
    expect(error.httpStatus).toBe(429);
    expect(bytes(f).equals(before)).toBe(true);
    // Per vault: another vault is not affected.
    await fileProposal(f.store, "other", parseProposalInput(VALID), null, t0 + 100);
    // Decided proposals do not count.
    await rejectProposal(f.store, "default", 3, "no", "t", t0 + 200);
    await approveProposal(f.store, "default", 4, { NEW_KEY: "v" }, "t", t0 + 200);
    await fileProposal(f.store, "default", parseProposalInput(VALID), null, t0 + 300);
    await fileProposal(f.store, "default", parseProposalInput(VALID), null, t0 + 300);
    expect((await thrown(() => fileProposal(f.store, "default", parseProposalInput(VALID), null, t0 + 400))).code).toBe("too_many_pending_proposals");
  });

  test("pending proposals expire after 7 days and stop counting at once", async () => {
    const f = await fresh();
    const t0 = Date.parse("2030-01-01T00:00:00.000Z");
    // 10 filed at t0, 10 filed a day later.
    for (let i = 0; i < 10; i++) await fileProposal(f.store, "default", parseProposalInput(VALID), null, t0);
    for (let i = 0; i < 10; i++) await fileProposal(f.store, "default", parseProposalInput(VALID), null, t0 + 86_400_000);
    const week = PROPOSAL_TTL_MS;
    // One millisecond before the first ten expire: still full.
    expect((await thrown(() => fileProposal(f.store, "default", parseProposalInput(VALID), null, t0 + week - 1))).code).toBe("too_many_pending_proposals");
    const first = vaultOf(f).proposals[0]!;
    expect(statusOf(first, t0 + week - 1)).toBe("pending");
    expect(statusOf(first, t0 + week)).toBe("expired");
    expect(proposalView(first, t0 + week).status).toBe("expired");
    // At exactly 7 days they are expired: ten slots free up at once.
    for (let i = 0; i < 10; i++) await fileProposal(f.store, "default", parseProposalInput(VALID), null, t0 + week);
    expect((await thrown(() => fileProposal(f.store, "default", parseProposalInput(VALID), null, t0 + week))).code).toBe("too_many_pending_proposals");
    // Expiry is derived, never stored: the file still says pending.
    expect(vaultOf(f).proposals.filter((p) => p.status === "pending")).toHaveLength(30);
    // An expired proposal can be neither approved nor rejected.
    const before = bytes(f);
    const approve = await thrown(() => approveProposal(f.store, "default", 1, { NEW_KEY: "v" }, "t", t0 + week));
    expect(approve.code).toBe("conflict");
    expect(approve.message).toContain("expired");
    expect((await thrown(() => rejectProposal(f.store, "default", 1, "", "t", t0 + week))).code).toBe("conflict");
    expect(bytes(f).equals(before)).toBe(true);
    expect(vaultOf(f).credentials.NEW_KEY).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------

describe("approval", () => {
  test("applies every service and credential change in one write and marks the proposal applied", async () => {
    const f = await fresh();
    await setCredentials(
      f.store,
      "default",
      [
        { key: "OLD_KEY", value: "old" },
        { key: "KEEP", value: "keep-old" },
      ],
      { description: "kept description" },
    );
    await addService(f.store, "default", parseServiceInput({ name: "old", host: "old.example.com", auth: { type: "bearer", token: "OLD_KEY" } }));
    await addService(f.store, "default", parseServiceInput({ name: "replaced", host: "r1.example.com", auth: { type: "bearer", token: "KEEP" } }));
    const createdKeep = vaultOf(f).credentials.KEEP!.created_at;
    const createdReplaced = vaultOf(f).services.find((s) => s.name === "replaced")!.created_at;
    const p = await fileProposal(
      f.store,
      "default",
      parseProposalInput({
        services: [
          { action: "set", name: "newsvc", host: "API.New.Example.com", auth: { type: "basic", username: "NEW_USER", password: "KEEP" }, description: "new one" },
          { action: "set", name: "replaced", host: "r2.example.com", auth: { type: "bearer", token: "GEN" }, enabled: false },
          { action: "delete", name: "old" },
        ],
        credentials: [
          { action: "set", key: "NEW_USER", description: "user" },
          { action: "set", key: "KEEP" },
          { action: "set", key: "GEN", value: "agent-generated-value" },
          { action: "delete", key: "OLD_KEY" },
        ],
      }),
      "s_0123456789ab",
      Date.parse("2031-02-03T00:00:00.000Z"),
    );
    expect(slotsNeedingValues(vaultOf(f).proposals[0]!)).toEqual(["NEW_USER", "KEEP"]);
    const at = Date.parse("2031-02-03T04:05:06.000Z");
    const approved = await approveProposal(f.store, "default", p.id, { NEW_USER: "user-value", KEEP: "keep-new" }, "cli:tester", at);
    expect(approved.status).toBe("applied");
    const vault = vaultOf(f);
    expect(getCredentialValue(f.store, vault, "NEW_USER")).toBe("user-value");
    expect(getCredentialValue(f.store, vault, "KEEP")).toBe("keep-new");
    expect(getCredentialValue(f.store, vault, "GEN")).toBe("agent-generated-value");
    expect(vault.credentials.OLD_KEY).toBeUndefined();
    expect(vault.credentials.NEW_USER).toMatchObject({ type: "static", description: "user", metadata: { proposal: "1" }, updated_at: "2031-02-03T04:05:06.000Z" });
    // Overwriting keeps created_at and the description when the slot gives none.
    expect(vault.credentials.KEEP!.created_at).toBe(createdKeep);
    expect(vault.credentials.KEEP!.description).toBe("kept description");
    expect(vault.services.map((s) => s.name).sort()).toEqual(["newsvc", "replaced"]);
    const newsvc = vault.services.find((s) => s.name === "newsvc")!;
    expect(newsvc).toMatchObject({ host: "api.new.example.com", enabled: true, description: "new one", auth: { type: "basic", username: "NEW_USER", password: "KEEP" } });
    const replaced = vault.services.find((s) => s.name === "replaced")!;
    expect(replaced).toMatchObject({ host: "r2.example.com", enabled: false, created_at: createdReplaced, auth: { type: "bearer", token: "GEN" } });
    const stored = vault.proposals[0]!;
    expect(stored.status).toBe("applied");
    expect(statusOf(stored, at + 30 * 86_400_000)).toBe("applied");
    expect(stored.audit.map((a) => [a.action, a.by])).toEqual([
      ["filed", "session s_0123456789ab"],
      ["approved", "cli:tester"],
    ]);
    expect(stored.audit[1]!.at).toBe("2031-02-03T04:05:06.000Z");
    // The proposal keeps no copy of the agent's value; no value anywhere in the proposal.
    expect(JSON.stringify(stored)).not.toContain("sealed_value");
    for (const v of ["user-value", "keep-new", "agent-generated-value"]) {
      expect(JSON.stringify(stored)).not.toContain(v);
      expect(bytes(f).includes(Buffer.from(v))).toBe(false);
    }
  });

  test("a reviewer may override an agent-supplied value", async () => {
    const f = await fresh();
    await fileProposal(f.store, "default", parseProposalInput({ credentials: [{ action: "set", key: "GEN", value: "from-agent" }] }), null);
    await approveProposal(f.store, "default", 1, { GEN: "from-human" }, "t");
    expect(getCredentialValue(f.store, vaultOf(f), "GEN")).toBe("from-human");
  });

  test("an oauth slot is approved without a value and left not connected", async () => {
    const f = await fresh();
    await fileProposal(
      f.store,
      "default",
      parseProposalInput({
        services: [{ action: "set", name: "gh", host: "api.github.com", auth: { type: "bearer", token: "GITHUB" } }],
        credentials: [
          {
            action: "set",
            key: "GITHUB",
            type: "oauth",
            description: "GitHub OAuth",
            oauth: {
              authorization_url: "https://github.com/login/oauth/authorize",
              token_url: "https://github.com/login/oauth/access_token",
              scopes: "repo user",
              client_id: "cid",
              token_auth_method: "client_secret_post",
            },
          },
        ],
      }),
      null,
    );
    expect(slotsNeedingValues(vaultOf(f).proposals[0]!)).toEqual([]);
    await approveProposal(f.store, "default", 1, {}, "t");
    const record = vaultOf(f).credentials.GITHUB!;
    expect(record.type).toBe("oauth");
    expect(record.metadata).toMatchObject({
      oauth_status: "not_connected",
      oauth_token_url: "https://github.com/login/oauth/access_token",
      oauth_authorization_url: "https://github.com/login/oauth/authorize",
      oauth_scopes: "repo user",
      oauth_client_id: "cid",
      oauth_token_auth_method: "client_secret_post",
    });
  });

  test("a missing value, an empty value or an unknown key fails and writes nothing", async () => {
    const f = await fresh();
    await fileProposal(f.store, "default", parseProposalInput({ ...VALID, credentials: [CRED, { action: "set", key: "SECOND" }] }), null);
    const before = bytes(f);
    for (const values of [{}, { NEW_KEY: "v" }, { NEW_KEY: "v", SECOND: "" }, { NEW_KEY: "v", SECOND: "w", EXTRA: "x" }] as Record<string, string>[]) {
      const error = await thrown(() => approveProposal(f.store, "default", 1, values, "t"));
      expect(error.code).toBe("invalid_argument");
      expect(error.message).not.toContain('"v"');
      expect(bytes(f).equals(before)).toBe(true);
    }
    expect(statusOf(vaultOf(f).proposals[0]!)).toBe("pending");
    expect((await thrown(() => approveProposal(f.store, "default", 99, {}, "t"))).code).toBe("proposal_not_found");
  });

  test("a reference broken since filing (the key was deleted) fails the approval and writes nothing", async () => {
    const f = await fresh();
    await setCredentials(f.store, "default", [{ key: "HAVE", value: "h" }]);
    await fileProposal(
      f.store,
      "default",
      parseProposalInput({ services: [{ action: "set", name: "s", host: "s.example.com", auth: { type: "bearer", token: "HAVE" } }], credentials: [{ action: "set", key: "OTHER" }] }),
      null,
    );
    await f.store.update((body) => {
      delete findVault(body, "default").credentials.HAVE;
    });
    const before = bytes(f);
    const error = await thrown(() => approveProposal(f.store, "default", 1, { OTHER: "o" }, "t"));
    expect(error.code).toBe("invalid_request");
    expect(bytes(f).equals(before)).toBe(true);
    expect(vaultOf(f).credentials.OTHER).toBeUndefined();
  });

  test("a write that fails halfway through the changes leaves the vault exactly as before", async () => {
    const f = await fresh();
    await setCredentials(f.store, "default", [{ key: "A", value: "a-old" }]);
    await fileProposal(
      f.store,
      "default",
      parseProposalInput({
        services: [{ action: "set", name: "s", host: "s.example.com", auth: { type: "bearer", token: "B" } }],
        credentials: [
          { action: "delete", key: "A" },
          { action: "set", key: "B" },
          { action: "set", key: "C" },
          { action: "set", key: "D" },
        ],
      }),
      null,
    );
    const before = bytes(f);
    const original = f.store.sealValue.bind(f.store);
    let calls = 0;
    // The third credential seal blows up: A is already deleted and B, C set in the working copy.
    f.store.sealValue = (kind, vaultId, name, value) => {
      calls += 1;
      if (calls === 3) throw new AgentVaultError("io_error", "simulated failure halfway through the approval");
      return original(kind, vaultId, name, value);
    };
    try {
      const error = await thrown(() => approveProposal(f.store, "default", 1, { B: "b", C: "c", D: "d" }, "t"));
      expect(error.code).toBe("io_error");
    } finally {
      f.store.sealValue = original;
    }
    expect(calls).toBe(3);
    expect(bytes(f).equals(before)).toBe(true);
    // The in-memory view is untouched too (no half-applied cached copy).
    const vault = vaultOf(f);
    expect(getCredentialValue(f.store, vault, "A")).toBe("a-old");
    expect(vault.credentials.B).toBeUndefined();
    expect(vault.services).toEqual([]);
    expect(statusOf(vault.proposals[0]!)).toBe("pending");
    // And it can still be approved afterwards.
    await approveProposal(f.store, "default", 1, { B: "b", C: "c", D: "d" }, "t");
    expect(vaultOf(f).credentials.A).toBeUndefined();
  });

  test("decided once: approve twice, reject after approve, approve after reject are conflicts that write nothing", async () => {
    const f = await fresh();
    await fileProposal(f.store, "default", parseProposalInput(VALID), null);
    await fileProposal(f.store, "default", parseProposalInput(VALID), null);
    await approveProposal(f.store, "default", 1, { NEW_KEY: "first" }, "t");
    await rejectProposal(f.store, "default", 2, "no", "t");
    const before = bytes(f);
    const twice = await thrown(() => approveProposal(f.store, "default", 1, { NEW_KEY: "second" }, "t"));
    expect(twice.code).toBe("conflict");
    expect(twice.httpStatus).toBe(409);
    expect(twice.message).toContain("already approved");
    expect((await thrown(() => rejectProposal(f.store, "default", 1, "late", "t"))).code).toBe("conflict");
    const afterReject = await thrown(() => approveProposal(f.store, "default", 2, { NEW_KEY: "x" }, "t"));
    expect(afterReject.code).toBe("conflict");
    expect(afterReject.message).toContain("rejected");
    expect((await thrown(() => rejectProposal(f.store, "default", 2, "again", "t"))).code).toBe("conflict");
    expect(bytes(f).equals(before)).toBe(true);
    expect(getCredentialValue(f.store, vaultOf(f), "NEW_KEY")).toBe("first");
  });

  test("two racing approvals (two stores on one file): exactly one applies, its value is the one stored", async () => {
    const f = await fresh();
    const { VaultStore } = await import("../../src/vault/vault.ts");
    const other = await VaultStore.unlock(f.paths, async () => "correct horse battery staple");
    for (let round = 0; round < 5; round++) {
      const p = await fileProposal(f.store, "default", parseProposalInput(VALID), null);
      const results = await Promise.allSettled([
        approveProposal(f.store, "default", p.id, { NEW_KEY: `one-${round}` }, "reviewer-1"),
        approveProposal(other, "default", p.id, { NEW_KEY: `two-${round}` }, "reviewer-2"),
      ]);
      const won = results.map((r) => r.status === "fulfilled");
      expect(won.filter(Boolean)).toHaveLength(1);
      const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect((lost.reason as AgentVaultError).code).toBe("conflict");
      const winner = won[0] ? "reviewer-1" : "reviewer-2";
      const stored = vaultOf(f).proposals.find((x) => x.id === p.id)!;
      expect(stored.audit.filter((a) => a.action === "approved").map((a) => a.by)).toEqual([winner]);
      expect(getCredentialValue(f.store, vaultOf(f), "NEW_KEY")).toBe(won[0] ? `one-${round}` : `two-${round}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("approval racing an unlock", () => {
  test("a reviewer whose unlock overlaps another reviewer's approval does not approve again from a stale copy", async () => {
    // Two `vault proposal approve` processes start together: the second reads the vault file, then
    // derives its key while the first approves and writes. Its later update must see that write.
    const f = await fresh();
    await fileProposal(f.store, "default", parseProposalInput(VALID), null);
    const { VaultStore } = await import("../../src/vault/vault.ts");
    const late = await VaultStore.unlock(f.paths, async () => {
      await approveProposal(f.store, "default", 1, { NEW_KEY: "first" }, "reviewer-1");
      return "correct horse battery staple";
    });
    const result = await approveProposal(late, "default", 1, { NEW_KEY: "second" }, "reviewer-2").then(
      () => "applied again",
      (error: AgentVaultError) => error.code,
    );
    expect(result).toBe("conflict");
    const stored = vaultOf(f).proposals[0]!;
    expect(stored.audit.filter((a) => a.action === "approved").map((a) => a.by)).toEqual(["reviewer-1"]);
    expect(getCredentialValue(f.store, vaultOf(f), "NEW_KEY")).toBe("first");
  });

  test("a write by another process during an unlock is not lost by the next update (credentials)", async () => {
    const f = await fresh();
    const late = await (await import("../../src/vault/vault.ts")).VaultStore.unlock(f.paths, async () => {
      await setCredentials(f.store, "default", [{ key: "WRITTEN_DURING_UNLOCK", value: "1" }]);
      return "correct horse battery staple";
    });
    await setCredentials(late, "default", [{ key: "WRITTEN_AFTER", value: "2" }]);
    expect(Object.keys(vaultOf(f).credentials).sort()).toEqual(["WRITTEN_AFTER", "WRITTEN_DURING_UNLOCK"]);
  });
});

describe("rejection", () => {
  test("records the reason for the agent, audits the reviewer with the time, drops the agent's value, changes nothing else", async () => {
    const f = await fresh();
    const at = Date.parse("2030-05-05T05:05:05.000Z");
    await fileProposal(f.store, "default", parseProposalInput({ ...VALID, credentials: [{ ...CRED, value: "agent-made-secret" }] }), "s_0123456789ab", at - 60_000);
    const p = await rejectProposal(f.store, "default", 1, "use the sandbox account", "cli:tester", at);
    expect(p.status).toBe("rejected");
    const stored = vaultOf(f).proposals[0]!;
    expect(stored.reason).toBe("use the sandbox account");
    expect(stored.audit[1]).toEqual({ at: "2030-05-05T05:05:05.000Z", action: "rejected", by: "cli:tester", note: "use the sandbox account" });
    expect(JSON.stringify(stored)).not.toContain("sealed_value");
    expect(proposalView(stored)).toMatchObject({ status: "rejected", reason: "use the sandbox account" });
    expect(proposalView(stored).credentials[0]).toMatchObject({ key: "NEW_KEY", has_value: false });
    expect(vaultOf(f).credentials).toEqual({});
    expect(vaultOf(f).services).toEqual([]);
    // A rejection after the TTL (of an already-rejected one) still reads as rejected, not expired.
    expect(statusOf(stored, at + 30 * 86_400_000)).toBe("rejected");
  });

  test("without a reason: no reason field, no note", async () => {
    const f = await fresh();
    await fileProposal(f.store, "default", parseProposalInput(VALID), null);
    await rejectProposal(f.store, "default", 1, "", "t");
    const stored = vaultOf(f).proposals[0]!;
    expect(stored.reason).toBeUndefined();
    expect(stored.audit[1]).not.toHaveProperty("note");
  });
});
