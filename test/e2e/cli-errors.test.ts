// Error messages a person can act on (issue 15), through the binary: a typo in a services or
// policy file names the field, the line and the near-miss; a missing file says so in words; an
// unknown template, provider, service or key suggests the nearest real one. Each refusal is one
// error line (+ hint), exit 2 or 1, and changes nothing.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunResult, type TempHome, tempHome } from "../support/binary.ts";

const SLOW = 60_000;
const homes: TempHome[] = [];
const scratch = mkdtempSync(join(tmpdir(), "av-cli-errors-"));
afterAll(() => {
  for (const home of homes) home.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

async function newHome(): Promise<TempHome> {
  const home = await tempHome({ init: "password" });
  homes.push(home);
  return home;
}

function file(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

/** The single error line's text (after `agent-vault: error: `), checking the error contract. */
function errorOf(r: RunResult, exitCode: number): string {
  const lines = r.stderr.trimEnd().split("\n");
  expect(r.code, r.stderr).toBe(exitCode);
  expect(r.stdout).toBe("");
  expect(lines[0]).toStartWith("agent-vault: error: ");
  expect(
    lines.slice(1).every((line) => line.startsWith("hint: ")),
    r.stderr,
  ).toBe(true);
  expect(r.stderr).not.toMatch(/\n\s+at |ENOENT|received undefined/);
  return lines[0]!.slice("agent-vault: error: ".length);
}

describe("service and policy files", () => {
  test(
    "a misspelt field names the file, the line, the field and the near-miss",
    async () => {
      const home = await newHome();
      await home.run(["vault", "credential", "set", "GITHUB_TOKEN=x", "SLACK_BOT_TOKEN=y"]);
      const yaml = file(
        "services.yaml",
        "services:\n  - name: github\n    host: api.github.com\n    auth: { type: bearer, token: GITHUB_TOKEN }\n  - name: slack\n    host: slack.com/api/*\n    auth:\n      type: bearer\n      tokn: SLACK_BOT_TOKEN\n",
      );
      expect(errorOf(await home.run(["vault", "service", "set", "-f", yaml]), 2)).toBe(`${yaml}:9: services[1].auth.token is missing (did you mean "tokn" → "token"?)`);

      // A header a front end routes by is named at its own line, not at `auth:`.
      const fronted = file(
        "fronted.yaml",
        '- name: app\n  host: app.example.com\n  auth:\n    type: custom\n    headers:\n      Authorization: "Bearer {{ GITHUB_TOKEN }}"\n      X-Forwarded-Host: "evil.example, {{ GITHUB_TOKEN }}"\n',
      );
      expect(errorOf(await home.run(["vault", "service", "set", "-f", fronted]), 2)).toBe(
        `${fronted}:7: auth.headers.X-Forwarded-Host: X-Forwarded-Host routes a request at a front end; a service cannot set it`,
      );

      const typeTypo = file("type.yaml", "- name: x\n  host: a.example.com\n  auth: { type: berer, token: GITHUB_TOKEN }\n");
      expect(errorOf(await home.run(["vault", "service", "set", "-f", typeTypo]), 2)).toMatch(
        new RegExp(`^${typeTypo}:3: services\\[0\\]\\.auth\\.type "berer" is not one of bearer, .* \\(did you mean "bearer"\\?\\)$`),
      );

      const json = file("services.json", '[{"name": "x", "host": "a.example.com",\n  "auth": {"type": "bearer", "token": "GITHUB_TOKEN"},\n  "enabld": false}]');
      expect(errorOf(await home.run(["vault", "service", "set", "-f", json]), 2)).toBe(`${json}:3: services[0]: unknown field "enabld" (did you mean "enabled"?)`);

      const broken = file("broken.yaml", "services:\n  - name: x\n   host: : a\n");
      expect(errorOf(await home.run(["vault", "service", "set", "-f", broken]), 2)).toMatch(new RegExp(`^${broken}:3:\\d+: not valid YAML: `));

      const badJson = file("bad.json", '[\n {"name": "x",\n  "host": "a.example.com"\n  "auth": {}}]');
      expect(errorOf(await home.run(["vault", "service", "set", "-f", badJson]), 2)).toMatch(new RegExp(`^${badJson}:4:\\d+: not valid JSON: `));

      // A raw ESC (JSON allows no control character) is named by its line and never printed raw.
      const escJson = file("esc-policy.json", '{\n  "rules": [\n    { "service": "x\u001b]0;owned\u0007\u001b[2J" }\n  ]\n}\n');
      const esc = await home.run(["agent", "create", "esc-bot"]).then(() => home.run(["agent", "policy", "esc-bot", "-f", escJson]));
      expect(esc.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/);
      expect(errorOf(esc, 2)).toBe(`${escJson}:3:20: not valid JSON: a raw control character (\\x1b); write it as \\u001b inside a string`);

      const policy = file("policy.yaml", "rate_limit:\n  requests_per_minit: 10\n");
      expect(errorOf(await home.run(["run", "--no-sandbox", "--policy", policy, "--", "true"]), 2)).toBe(
        `${policy}:2: policy: rate_limit.requests_per_minute is missing (did you mean "requests_per_minit" → "requests_per_minute"?)`,
      );
      // Nothing was changed by any of them.
      expect((await home.run(["vault", "service", "list", "--json"])).stdout.trim()).toBe("[]");
    },
    SLOW,
  );

  test(
    "a YAML syntax error names the file, line and column and says what to fix in a few words, on one line",
    async () => {
      const home = await newHome();
      await home.run(["agent", "create", "yaml-bot"]);
      const policy = (name: string, text: string) => home.run(["agent", "policy", "yaml-bot", "-f", file(name, text)]);
      // The parser's own words were "Flow sequence in block collection must be sufficiently indented and end with a ]".
      expect(errorOf(await policy("unclosed.yaml", "rules:\n  - service: x\n    methods: [GET\n"), 2)).toBe(
        `${join(scratch, "unclosed.yaml")}:4:1: not valid YAML: a [ list is not closed with ] (or a line inside it is not indented)`,
      );
      expect(errorOf(await policy("quote.yaml", 'rules:\n  - service: "x\n'), 2)).toBe(`${join(scratch, "quote.yaml")}:3:1: not valid YAML: a " string is not closed`);
      expect(errorOf(await policy("colons.yaml", "rate_limit: requests_per_minute: 5\n"), 2)).toBe(
        `${join(scratch, "colons.yaml")}:1:13: not valid YAML: a second ": " on one line (quote the value if it holds ": ")`,
      );
      expect(errorOf(await policy("tabs.yaml", "rules:\n\t- service: x\n"), 2)).toBe(`${join(scratch, "tabs.yaml")}:2:1: not valid YAML: a tab used for indentation (indent with spaces)`);
      expect(errorOf(await policy("twice.yaml", "usage_cap: 5\nusage_cap: 6\n"), 2)).toBe(`${join(scratch, "twice.yaml")}:2:1: not valid YAML: the same key is given twice`);
      // A reason that quotes a character of the file: ESC is shown escaped, never sent raw.
      const esc = await policy("esc.yaml", 'rules:\n  - service: "x\\\u001b[2J"\n');
      expect(esc.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/);
      expect(errorOf(esc, 2)).toBe(`${join(scratch, "esc.yaml")}:2:16: not valid YAML: invalid escape sequence \\\\x1b`);
      // A number out of range in a file: the field and the bound, not zod's "Too small: expected number to be >=1".
      expect(errorOf(await policy("range.yaml", "rate_limit:\n  requests_per_minute: -3\n"), 2)).toBe(`${join(scratch, "range.yaml")}:2: policy: rate_limit.requests_per_minute must be at least 1`);
      expect(errorOf(await policy("whole.yaml", "usage_cap: 1.5\n"), 2)).toBe(`${join(scratch, "whole.yaml")}:1: policy: usage_cap must be a whole number`);
      expect(JSON.parse((await home.run(["agent", "info", "yaml-bot", "--json"])).stdout).policy ?? null).toBeNull();
    },
    SLOW,
  );

  test(
    "--rate-limit and --usage-cap: a bad number names the option, the text given and what is allowed",
    async () => {
      const home = await newHome();
      await home.run(["agent", "create", "limit-bot"]);
      for (const text of ["-3", "0", "1.5", "abc", "", "1000001", "1e3"]) {
        const r = await home.run(["agent", "policy", "limit-bot", `--rate-limit=${text}`]);
        expect(errorOf(r, 2)).toBe(`--rate-limit "${text}" is not a whole number of requests per minute from 1 to 1000000`);
        expect(r.stderr).toContain("\nhint: e.g. --rate-limit 60\n");
        expect(r.stderr).not.toMatch(/Too (small|big)|expected|not a number/);
      }
      expect(errorOf(await home.run(["agent", "policy", "limit-bot", "--usage-cap", "-1"]), 2)).toBe('--usage-cap "-1" is not a whole number of requests from 1 to 1000000000');
      // The agent is as it was, and good numbers still work.
      expect(JSON.parse((await home.run(["agent", "info", "limit-bot", "--json"])).stdout).policy ?? null).toBeNull();
      const good = await home.run(["agent", "policy", "limit-bot", "--rate-limit", "60", "--usage-cap", "1000"]);
      expect(good.code, good.stderr).toBe(0);
      expect(JSON.parse((await home.run(["agent", "info", "limit-bot", "--json"])).stdout).policy).toEqual({ rate_limit: { requests_per_minute: 60 }, usage_cap: 1000 });
    },
    SLOW,
  );

  test(
    "a missing file says `cannot read FILE: no such file`",
    async () => {
      const home = await newHome();
      const missing = join(scratch, "no-such-services.yaml");
      expect(errorOf(await home.run(["vault", "service", "set", "-f", missing]), 2)).toBe(`cannot read ${missing}: no such file`);
      expect(errorOf(await home.run(["run", "--policy", missing, "--", "true"]), 2)).toBe(`cannot read ${missing}: no such file`);
    },
    SLOW,
  );
});

describe("suggestions", () => {
  test(
    "an unknown template, provider, service, credential or vault suggests the nearest name",
    async () => {
      const home = await newHome();
      await home.run(["vault", "credential", "set", "STRIPE_KEY=sk_test_1", "GITHUB_TOKEN=x"]);
      expect((await home.run(["vault", "service", "add", "--template", "github"])).code).toBe(0);
      expect(errorOf(await home.run(["vault", "service", "add", "--template", "opnai"]), 1)).toBe('no catalog template "opnai" (did you mean "openai"?)');
      expect(errorOf(await home.run(["oauth", "connect", "GH_OAUTH", "--provider", "githb", "--client-id", "x", "--no-browser"]), 2)).toBe('unknown provider "githb" (did you mean "github"?)');
      expect(errorOf(await home.run(["vault", "service", "disable", "githib"]), 1)).toBe('no service "githib" in vault "default" (did you mean "github"?)');
      expect(errorOf(await home.run(["run", "--no-sandbox", "--service", "gihub", "--", "true"]), 1)).toBe('no service "gihub" in vault "default" (did you mean "github"?)');
      expect(errorOf(await home.run(["vault", "credential", "get", "STRIPE_KEI"]), 1)).toBe('no credential STRIPE_KEI in vault "default" (did you mean "STRIPE_KEY"?)');
      expect(errorOf(await home.run(["vault", "credential", "list", "--vault", "defualt"]), 1)).toBe('no vault named "defualt" (did you mean "default"?)');
      expect(errorOf(await home.run(["vault", "service", "add", "--name", "x", "--host", "a.example.com", "--auth-type", "berer", "--token-key", "A"]), 2)).toMatch(
        /not "berer" \(did you mean "bearer"\?\)$/,
      );
      expect(errorOf(await home.run(["vault", "proposal", "list", "--status", "pendng"]), 2)).toMatch(/not "pendng" \(did you mean "pending"\?\)$/);
      // Far from every name: no guess.
      expect(errorOf(await home.run(["vault", "service", "add", "--template", "zzzzzz"]), 1)).toBe('no catalog template "zzzzzz"');
    },
    SLOW,
  );

  test(
    "a template whose keys are not stored names --token-key (and each key of a two-key template)",
    async () => {
      const home = await newHome();
      await home.run(["vault", "credential", "set", "STRIPE_KEY=sk_test_1", "TWILIO_SID=AC1"]);
      const stripe = await home.run(["vault", "service", "add", "--template", "stripe"]);
      expect(errorOf(stripe, 1)).toBe('service "stripe" uses STRIPE_SECRET_KEY, which vault "default" does not have');
      expect(stripe.stderr).toContain("hint: set it first: agent-vault vault credential set STRIPE_SECRET_KEY=-; or use keys you already have: --token-key STRIPE_KEY\n");
      const twilio = await home.run(["vault", "service", "add", "--template", "twilio"]);
      expect(errorOf(twilio, 1)).toMatch(/TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN/);
      expect(twilio.stderr).toMatch(/hint: .*TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN; or use keys you already have: --username-key TWILIO_SID --password-key KEY\n/);
      // The README's order: the template's own key name, then the template.
      expect((await home.run(["vault", "credential", "set", "STRIPE_SECRET_KEY=sk_test_abc"])).code).toBe(0);
      expect((await home.run(["vault", "service", "add", "--template", "stripe"])).code).toBe(0);
    },
    SLOW,
  );
});

describe("flags", () => {
  test(
    "--vault is taken before the subcommand too; a clash or a command without --vault is a usage error",
    async () => {
      const home = await newHome();
      expect((await home.run(["vault", "create", "work"])).code).toBe(0);
      expect((await home.run(["vault", "credential", "set", "WORK_KEY=w", "--vault", "work"])).code).toBe(0);
      const early = await home.run(["--vault", "work", "vault", "credential", "list", "--json"]);
      expect(early.code, early.stderr).toBe(0);
      expect((JSON.parse(early.stdout) as { key: string }[]).map((c) => c.key)).toEqual(["WORK_KEY"]);
      expect(JSON.parse((await home.run(["vault", "credential", "list", "--json"])).stdout)).toEqual([]);
      expect(errorOf(await home.run(["--vault", "wrok", "vault", "credential", "list"]), 1)).toBe('no vault named "wrok" (did you mean "work"?)');
      expect(errorOf(await home.run(["--vault", "work", "vault", "credential", "list", "--vault", "default"]), 2)).toBe('--vault given twice ("work" and "default")');
      expect(errorOf(await home.run(["--vault", "work", "catalog"]), 2)).toBe("`catalog` takes no --vault");
    },
    SLOW,
  );

  test(
    "vault settings checks its flags before asking for a password",
    async () => {
      const home = await newHome();
      const noPassword = { AGENT_VAULT_MASTER_PASSWORD: undefined };
      expect(errorOf(await home.run(["vault", "settings", "--unmatched", "dney"], { env: noPassword }), 2)).toBe('--unmatched must be passthrough, deny or guard, not "dney" (did you mean "deny"?)');
      expect(errorOf(await home.run(["vault", "settings", "--guard", "yes"], { env: noPassword }), 2)).toBe('--guard must be on or off, not "yes"');
      expect(errorOf(await home.run(["vault", "settings", "--guard-bypass", "bad host"], { env: noPassword }), 2)).toMatch(/^--guard-bypass: "bad host" is not a host name$/);
      // Valid flags still need the password.
      expect((await home.run(["vault", "settings", "--unmatched", "deny"], { env: noPassword })).code).toBe(1);
    },
    SLOW,
  );
});
