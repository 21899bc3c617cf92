import { describe, expect, test } from "bun:test";
import { CATALOG } from "../../src/vault/catalog.ts";
import { parseHostPattern } from "../../src/vault/host.ts";
import { AuthSchema, credentialKeysOf, ServiceInputSchema } from "../../src/vault/service.schema.ts";

describe("host patterns", () => {
  test.each([
    ["api.github.com", { kind: "exact", host: "api.github.com", port: null, pathPrefix: null }],
    ["API.GitHub.com", { kind: "exact", host: "api.github.com", port: null, pathPrefix: null }],
    ["*.example.com", { kind: "wildcard", host: "example.com", port: null, pathPrefix: null }],
    ["api.example.com:8443", { kind: "exact", host: "api.example.com", port: 8443, pathPrefix: null }],
    ["slack.com/api/*", { kind: "exact", host: "slack.com", port: null, pathPrefix: "/api/" }],
    ["127.0.0.1:9000", { kind: "exact", host: "127.0.0.1", port: 9000, pathPrefix: null }],
  ])("accepts %s", (input, expected) => {
    expect(parseHostPattern(input)).toEqual(expected as never);
  });

  test.each([
    "",
    " api.github.com",
    "api.github.com.",
    "evil..com",
    "*.com",
    "*evil.com",
    "api.*.com",
    "a.com:0",
    "a.com:99999",
    "a.com:x",
    "https://a.com",
    "user@a.com",
    "-a.com",
    "a_b.com",
    "a.com/x*y",
    "a.com/ space",
  ])("refuses %p with a reason", (input) => {
    expect(typeof parseHostPattern(input)).toBe("string");
  });
});

describe("service schema", () => {
  test("defaults api-key header and prefix", () => {
    expect(AuthSchema.parse({ type: "api-key", key: "K" })).toEqual({ type: "api-key", key: "K", header: "Authorization", prefix: "" });
  });

  test.each([
    [{ type: "bearer", token: "lowercase" }, "UPPER_SNAKE_CASE"],
    [{ type: "bearer", token: "A", extra: 1 }, "Unrecognized"],
    [{ type: "api-key", key: "K", header: "Host" }, "cannot be set"],
    [{ type: "api-key", key: "K", header: "X-Key", prefix: "a\r\nEvil: 1" }, "control characters"],
    [{ type: "custom", headers: { "X-A": "no reference" } }, "{{ KEY }}"],
    [{ type: "custom", headers: {} }, "1 to 16"],
    [{ type: "query", param: "a&b", key: "K" }, "query parameter"],
    [{ type: "oauth2" }, ""],
  ])("refuses %p", (auth, message) => {
    const result = AuthSchema.safeParse(auth);
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain(message);
  });

  test("credential keys of every auth type", () => {
    expect(credentialKeysOf({ type: "basic", username: "U", password: "P" })).toEqual(["U", "P"]);
    expect(credentialKeysOf({ type: "custom", headers: { A: "{{ X }}:{{Y}}", B: "{{ X }}" } })).toEqual(["X", "Y"]);
    expect(credentialKeysOf({ type: "passthrough" })).toEqual([]);
  });
});

describe("catalog", () => {
  test("at least 30 templates, each a valid service with a unique name", () => {
    expect(CATALOG.length).toBeGreaterThanOrEqual(30);
    expect(new Set(CATALOG.map((e) => e.name)).size).toBe(CATALOG.length);
    for (const entry of CATALOG) {
      const parsed = ServiceInputSchema.safeParse({ name: entry.name, host: entry.host, auth: entry.auth });
      expect(parsed.success).toBe(true);
      expect(entry.obtain).toStartWith("https://");
    }
  });

  test("names the APIs agents use most", () => {
    const names = CATALOG.map((e) => e.name);
    for (const name of ["openai", "anthropic", "github", "gitlab", "stripe", "slack", "linear", "notion", "sentry", "vercel"]) expect(names).toContain(name);
  });
});
