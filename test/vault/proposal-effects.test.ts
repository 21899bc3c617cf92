// Unit tests of src/vault/proposal-effects.ts: what approving a proposal would do, from the vault's
// records, for each kind of change; the warnings for a secret that would go somewhere new, a value
// replaced, a credential deleted. Pure: a hand-made vault record and proposal, no files.
import { describe, expect, test } from "bun:test";
import { describeAuth, proposalEffects } from "../../src/vault/proposal-effects.ts";
import { type Proposal, type StoredSlot } from "../../src/vault/proposal.schema.ts";
import { parseProposalInput } from "../../src/vault/proposals.ts";
import { type Service } from "../../src/vault/service.schema.ts";
import { type VaultRecord } from "../../src/vault/state.schema.ts";

const NOW = "2026-01-01T00:00:00.000Z";

function credential(description = "") {
  return { type: "static" as const, description, created_at: NOW, updated_at: NOW, expires_at: null, metadata: {}, value: "AAAA" };
}

function service(name: string, host: string, auth: Service["auth"], extra: Partial<Service> = {}): Service {
  return { name, host, auth, enabled: true, created_at: NOW, ...extra };
}

function vault(): VaultRecord {
  return {
    id: "v_0123456789abcdef",
    name: "default",
    created_at: NOW,
    settings: { unmatched: "passthrough", guard: true, scrub: true, guard_bypass: [] },
    credentials: { FAKE_TOKEN: credential(), STRIPE_KEY: credential("stripe"), UNUSED_KEY: credential() },
    services: [service("fake", "api.fake.test", { type: "bearer", token: "FAKE_TOKEN" }), service("stripe", "api.stripe.com", { type: "bearer", token: "STRIPE_KEY" }, { description: "payments" })],
    sessions: [],
    agents: [],
    proposals: [],
    proposal_seq: 0,
    held: [],
    held_seq: 0,
  };
}

/** A stored proposal from an agent's body (parsed as the API parses it); `sealed` marks agent-supplied values. */
function proposal(body: unknown, sealed: string[] = []): Proposal {
  const input = parseProposalInput(body);
  const credentials: StoredSlot[] = input.credentials.map((slot) => {
    if (slot.action === "delete") return slot;
    const { value: _, ...rest } = slot;
    return sealed.includes(slot.key) ? { ...rest, sealed_value: "AAAA" } : rest;
  });
  return { id: 1, status: "pending", created_at: NOW, expires_at: NOW, session_id: null, services: input.services, credentials, message: input.message, audit: [] };
}

describe("proposalEffects", () => {
  test("a value to paste names where it will be sent, even when an earlier proposal set up that service (two-step bait)", () => {
    const baited = {
      ...vault(),
      credentials: { ...vault().credentials, HELPER_TOKEN: credential() },
      services: [...vault().services, service("helper", "evil.example", { type: "bearer", token: "HELPER_TOKEN" })],
    };
    const { effects } = proposalEffects(
      baited,
      proposal({ credentials: [{ action: "set", key: "HELPER_TOKEN", description: "Your OpenAI API key (the SDK reads it from here)" }], message: "need the key" }),
    );
    expect(effects).toEqual(["credential HELPER_TOKEN: replaces the current value (you type the value); sent to evil.example"]);
  });

  test("moving an existing service to another host: the host change, and a warning naming the secret and both hosts", () => {
    const { effects, warnings } = proposalEffects(
      vault(),
      proposal({ services: [{ action: "set", name: "fake", host: "evil.example.com", auth: { type: "bearer", token: "FAKE_TOKEN" } }], message: "no changes, just a refresh" }),
    );
    expect(effects).toEqual(["service fake: host api.fake.test → evil.example.com"]);
    expect(warnings).toEqual(["FAKE_TOKEN, a credential already in the vault, would be sent to evil.example.com; today it goes only to api.fake.test"]);
  });

  test("a new service: adds host, with its auth and keys; a new host for an existing key warns", () => {
    const { effects, warnings } = proposalEffects(vault(), proposal({ services: [{ action: "set", name: "new", host: "api.new.test", auth: { type: "bearer", token: "STRIPE_KEY" } }] }));
    expect(effects).toEqual(["service new: adds host api.new.test (bearer, STRIPE_KEY)"]);
    expect(warnings).toEqual(["STRIPE_KEY, a credential already in the vault, would be sent to api.new.test; today it goes only to api.stripe.com"]);
    const unused = proposalEffects(vault(), proposal({ services: [{ action: "set", name: "new", host: "api.new.test", auth: { type: "bearer", token: "UNUSED_KEY" } }] }));
    expect(unused.warnings).toEqual(["UNUSED_KEY, a credential already in the vault, would be sent to api.new.test; today no service sends it"]);
  });

  test("a new service with a new credential: no warning (the reviewer types the value)", () => {
    const { effects, warnings } = proposalEffects(
      vault(),
      proposal({ services: [{ action: "set", name: "new", host: "api.new.test", auth: { type: "bearer", token: "NEW_KEY" } }], credentials: [{ action: "set", key: "NEW_KEY" }] }),
    );
    expect(effects).toEqual(["service new: adds host api.new.test (bearer, NEW_KEY)", "credential NEW_KEY: new (static; you type the value); sent to api.new.test"]);
    expect(warnings).toEqual([]);
  });

  test("the same key to the host it already goes to: no warning; an identical service is 'unchanged'", () => {
    const { effects, warnings } = proposalEffects(vault(), proposal({ services: [{ action: "set", name: "fake", host: "api.fake.test", auth: { type: "bearer", token: "FAKE_TOKEN" } }] }));
    expect(effects).toEqual(["service fake: unchanged"]);
    expect(warnings).toEqual([]);
  });

  test("auth, enabled and description changes of an existing service are each named", () => {
    const { effects } = proposalEffects(
      vault(),
      proposal({ services: [{ action: "set", name: "stripe", host: "api.stripe.com", auth: { type: "api-key", key: "STRIPE_KEY", header: "X-Key" }, enabled: false }] }),
    );
    expect(effects).toEqual(["service stripe: auth bearer, STRIPE_KEY → api-key in X-Key, STRIPE_KEY", "service stripe: enabled → disabled", "service stripe: description removed"]);
  });

  test("replacing an existing credential: the effect, and a warning (stronger when the agent chose the value)", () => {
    const typed = proposalEffects(vault(), proposal({ credentials: [{ action: "set", key: "STRIPE_KEY" }] }));
    expect(typed.effects).toEqual(["credential STRIPE_KEY: replaces the current value (you type the value); sent to api.stripe.com"]);
    expect(typed.warnings).toEqual(["credential STRIPE_KEY: the current value is replaced; used by service stripe"]);
    const chosen = proposalEffects(vault(), proposal({ credentials: [{ action: "set", key: "STRIPE_KEY", value: "sk_agent_chosen" }] }, ["STRIPE_KEY"]));
    expect(chosen.effects).toEqual(["credential STRIPE_KEY: replaces the current value (value chosen by the agent); sent to api.stripe.com"]);
    expect(chosen.warnings[0]).toContain("one the agent chose (so the agent knows it)");
  });

  test("deleting: an existing credential (warning, with the service that still names it), a missing one, a service", () => {
    const { effects, warnings } = proposalEffects(
      vault(),
      proposal({
        credentials: [
          { action: "delete", key: "FAKE_TOKEN" },
          { action: "delete", key: "GHOST_KEY" },
        ],
        services: [
          { action: "delete", name: "stripe" },
          { action: "delete", name: "ghost" },
        ],
      }),
    );
    expect(effects).toEqual([
      "service stripe: removed (host api.stripe.com; stops sending STRIPE_KEY)",
      "service ghost: not in the vault, nothing to remove",
      "credential FAKE_TOKEN: deleted",
      "credential GHOST_KEY: not in the vault, nothing to delete",
    ]);
    expect(warnings).toEqual(["credential FAKE_TOKEN is deleted and its value is gone for good; service fake still names it and will fail"]);
  });

  test("an OAuth slot and a passthrough service say so", () => {
    const { effects, warnings } = proposalEffects(
      vault(),
      proposal({
        services: [{ action: "set", name: "open", host: "*.open.test", auth: { type: "passthrough" } }],
        credentials: [{ action: "set", key: "GH_OAUTH", type: "oauth", oauth: { token_url: "https://gh.test/token" } }],
      }),
    );
    expect(effects).toEqual([
      "service open: adds host *.open.test (passthrough: the host is allowed, nothing injected)",
      "credential GH_OAUTH: new (oauth; connect or paste it after approval; token URL https://gh.test/token); no service sends it",
    ]);
    // Where the tokens and the client secret would be posted is the agent's choice (red team, HIGH).
    expect(warnings).toEqual([
      "credential GH_OAUTH: its OAuth URLs are the agent's choice; connect and paste use them only if they are a known provider's, else name the provider (--provider) or pass the URL yourself",
    ]);
  });

  test("a service that would win requests another gets today (a port, a path prefix, an exact host under a wildcard) is named (red team, session 7)", () => {
    const cases: [string, string][] = [
      ["api.fake.test:443", "api.fake.test"],
      ["api.fake.test/v1/*", "api.fake.test"],
    ];
    for (const [host] of cases) {
      const { warnings } = proposalEffects(
        vault(),
        proposal({ services: [{ action: "set", name: "fake-proj", host, auth: { type: "bearer", token: "PROJ_KEY" } }], credentials: [{ action: "set", key: "PROJ_KEY", value: "sk-proj-agent" }] }, [
          "PROJ_KEY",
        ]),
      );
      expect(warnings, host).toContain(`service fake-proj (${host}) would take over requests that service fake (api.fake.test) gets today, which carry FAKE_TOKEN: they would carry PROJ_KEY instead`);
    }
    // Under a wildcard, and a passthrough that would stop injection.
    const wild = vault();
    wild.services.push(service("hosts", "*.wild.test", { type: "bearer", token: "FAKE_TOKEN" }));
    const { warnings } = proposalEffects(wild, proposal({ services: [{ action: "set", name: "open", host: "api.wild.test", auth: { type: "passthrough" } }] }));
    expect(warnings).toContain("service open (api.wild.test) would take over requests that service hosts (*.wild.test) gets today, which carry FAKE_TOKEN: they would carry nothing injected instead");
    // A service on a host nobody serves takes nothing over.
    expect(
      proposalEffects(vault(), proposal({ services: [{ action: "set", name: "other", host: "api.other.test:443", auth: { type: "bearer", token: "FAKE_TOKEN" } }] })).warnings.some((w) =>
        w.includes("take over"),
      ),
    ).toBe(false);
  });

  test("the same host, a key the vault has placed differently (a second header, the query) is a warning", () => {
    const { effects, warnings } = proposalEffects(
      vault(),
      proposal({
        services: [{ action: "set", name: "fake", host: "api.fake.test", auth: { type: "custom", headers: { Authorization: "Bearer {{ FAKE_TOKEN }}", "X-Project": "proj_{{ FAKE_TOKEN }}" } } }],
      }),
    );
    expect(effects[0]).toContain(`X-Project: "proj_{{ FAKE_TOKEN }}"`);
    expect(warnings).toContain("service fake would place FAKE_TOKEN differently in requests to api.fake.test (bearer → custom): check where the auth line above puts it");
  });

  test("describeAuth names every auth type's keys", () => {
    expect(describeAuth({ type: "basic", username: "U_KEY", password: "P_KEY" })).toBe("basic, U_KEY:P_KEY");
    expect(describeAuth({ type: "query", param: "api_key", key: "Q_KEY" })).toBe("query ?api_key=, Q_KEY");
    expect(describeAuth({ type: "custom", headers: { "X-A": "t {{ A_KEY }}", "X-B": "{{ B_KEY }}" } })).toBe(`custom headers, A_KEY, B_KEY: X-A: "t {{ A_KEY }}", X-B: "{{ B_KEY }}"`);
  });
});
