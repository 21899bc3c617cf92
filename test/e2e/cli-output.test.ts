// How the CLI's output looks (issue 15), through the binary: every table fits 80 columns (the
// long column is cut with "…", no line wraps), colour appears only at a terminal and never with
// NO_COLOR or when piped, and text an agent wrote is still escaped inside a coloured table.
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { parseProposalInput, fileProposal } from "../../src/vault/proposals.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { TEST_PASSWORD, type TempHome, tempHome } from "../support/binary.ts";
import { inTerminal } from "../support/pty.ts";

const SLOW = 60_000;
const ESC = "\x1b";
const homes: TempHome[] = [];
afterAll(() => {
  for (const home of homes) home.cleanup();
});

/** A home with long proposals, services, credentials: every table has something to cut. */
async function busyHome(): Promise<TempHome> {
  const home = await tempHome({ init: "password" });
  homes.push(home);
  const long = "Need the payments API to create a test customer and attach a card, then list invoices for the report ".repeat(2);
  await home.run(["vault", "credential", "set", "STRIPE_SECRET_KEY=-", "--description", long], { stdin: "sk_test_123\n" });
  await home.run(["vault", "service", "add", "--template", "stripe"]);
  const store = await VaultStore.unlock(homePaths(home.dir), async () => TEST_PASSWORD);
  for (const message of [long, `colour me ${ESC}[31mred${ESC}[0m and ${ESC}]52;c;aGk=${ESC}\\ done`]) {
    const input = parseProposalInput({
      services: [
        { action: "set", name: "very-long-service-name-for-width", host: "api.some-very-long-vendor-domain.example.com", auth: { type: "bearer", token: "VERY_LONG_CREDENTIAL_KEY_NAME_TOKEN" } },
      ],
      credentials: [{ action: "set", key: "VERY_LONG_CREDENTIAL_KEY_NAME_TOKEN", description: "a key" }],
      message,
    });
    await fileProposal(store, "default", input, null);
  }
  home.reown();
  return home;
}

const TABLES: readonly (readonly string[])[] = [["vault", "proposal", "list"], ["oauth", "providers"], ["catalog"], ["vault", "service", "list"], ["vault", "credential", "list"], ["vault", "list"]];

/** Characters as a terminal counts them (… is one), after any colour codes are taken out. */
const visible = (line: string) => [...line.replace(/\x1b\[[0-9;]*m/g, "")].length;

describe("tables", () => {
  test(
    "every table fits 80 columns when piped: long columns cut with …, rows whole",
    async () => {
      const home = await busyHome();
      for (const args of TABLES) {
        const r = await home.run(args);
        expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
        const lines = r.stdout.trimEnd().split("\n");
        expect(lines.length).toBeGreaterThan(1);
        for (const line of lines) expect(visible(line), `${args.join(" ")}:\n${line}`).toBeLessThanOrEqual(80);
        expect(r.stdout).not.toContain(ESC);
      }
      const proposals = (await home.run(["vault", "proposal", "list"])).stdout.split("\n");
      expect(proposals.find((line) => line.startsWith("1 "))).toMatch(/^1 +pending +very-long-service-name-for-w… +Need the payments API.*… +\S+ ago$/);
      // --json is never cut.
      const json = JSON.parse((await home.run(["vault", "proposal", "list", "--json"])).stdout) as { id: number; message: string }[];
      expect(json.find((p) => p.id === 1)!.message.length).toBeGreaterThan(150);
    },
    SLOW,
  );

  test(
    "at a terminal: the terminal's width, bold headers and coloured statuses; NO_COLOR turns colour off",
    async () => {
      const home = await busyHome();
      const coloured = await inTerminal(home, ["vault", "proposal", "list"], [], {}, 100);
      expect(coloured.code).toBe(0);
      const lines = coloured.output.trimEnd().split("\r\n");
      expect(lines[0]).toContain(`${ESC}[1m`);
      expect(lines[1]).toContain(`${ESC}[33mpending`);
      for (const line of lines) expect(visible(line)).toBeLessThanOrEqual(100);
      expect(Math.max(...lines.map(visible))).toBeGreaterThan(80);
      // The agent's own escape codes are shown, not obeyed, colour or not.
      expect(coloured.output).toContain("colour me \\x1b[31mred");
      expect(coloured.output).not.toContain(`${ESC}]52`);

      const plain = await inTerminal(home, ["vault", "proposal", "list"], [], { NO_COLOR: "1" });
      expect(plain.code).toBe(0);
      expect(plain.output).not.toContain(ESC);
      expect(plain.output).toContain("colour me \\x1b[31mred");
    },
    SLOW,
  );
});

describe("errors", () => {
  test(
    "error: is red and the hint dim at a terminal; plain when piped or with NO_COLOR",
    async () => {
      const home = await busyHome();
      const tty = await inTerminal(home, ["vault", "service", "disable", "stripee"], []);
      expect(tty.code).toBe(1);
      expect(tty.output).toContain(`agent-vault: ${ESC}[31merror:${ESC}[39m no service "stripee"`);
      expect(tty.output).toMatch(new RegExp(`${ESC}\\[2mhint: `));
      const noColor = await inTerminal(home, ["vault", "service", "disable", "stripee"], [], { NO_COLOR: "1" });
      expect(noColor.output).not.toContain(ESC);
      const piped = await home.run(["vault", "service", "disable", "stripee"]);
      expect(piped.stderr).toStartWith('agent-vault: error: no service "stripee"');
      expect(piped.stderr).not.toContain(ESC);
    },
    SLOW,
  );
});

describe("proposal show", () => {
  test(
    "a change to a service the vault has is a diff (~, - the vault's, + the proposal's, kept fields plain), a new one +; agent text stays escaped",
    async () => {
      const home = await tempHome({ init: "password" });
      homes.push(home);
      await home.run(["vault", "credential", "set", "GITHUB_TOKEN=ghp_x", "OTHER_KEY=y"]);
      for (const args of [
        ["--name", "github", "--host", "api.github.com", "--auth-type", "bearer", "--token-key", "GITHUB_TOKEN", "--description", "the old words"],
        ["--name", "same", "--host", "same.example.com", "--auth-type", "bearer", "--token-key", "OTHER_KEY"],
      ]) {
        const added = await home.run(["vault", "service", "add", ...args]);
        expect(added.code, added.stderr).toBe(0);
      }
      const store = await VaultStore.unlock(homePaths(home.dir), async () => TEST_PASSWORD);
      const input = parseProposalInput({
        services: [
          { action: "set", name: "github", host: "collector.example.net", auth: { type: "bearer", token: "GITHUB_TOKEN" }, description: `new ${ESC}[2Jwords\nsecond line` },
          { action: "set", name: "same", host: "same.example.com", auth: { type: "bearer", token: "OTHER_KEY" } },
          { action: "set", name: "fresh", host: "fresh.example.com", auth: { type: "bearer", token: "NEW_KEY" } },
        ],
        credentials: [
          { action: "set", key: "NEW_KEY" },
          { action: "set", key: "OTHER_KEY" },
        ],
        message: "update github",
      });
      const { id } = await fileProposal(store, "default", input, null);
      home.reown();

      const shown = await home.run(["vault", "proposal", "show", String(id)]);
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).not.toContain(ESC);
      const section = (title: string) => {
        const lines = shown.stdout.split("\n");
        const start = lines.indexOf(title);
        expect(start, shown.stdout).toBeGreaterThan(-1);
        const end = lines.indexOf("", start);
        return lines.slice(start + 1, end === -1 ? undefined : end);
      };
      expect(section("Services, as proposed:")).toEqual([
        "  ~ github: changes the service the vault has",
        "      - host: api.github.com",
        "      + host: collector.example.net",
        "        auth: bearer, GITHUB_TOKEN",
        "        enabled: yes",
        "      - description: the old words",
        "      + description:",
        "      +   │ new \\x1b[2Jwords",
        "      +   │ second line",
        "    same: the same as the service the vault has",
        "        host: same.example.com",
        "        auth: bearer, OTHER_KEY",
        "        enabled: yes",
        "  + fresh: fresh.example.com, bearer, NEW_KEY",
      ]);
      expect(section("Credentials, as proposed:")).toEqual(["  + NEW_KEY [you supply the value]", "  ~ OTHER_KEY [replaces the current value; you supply the value]"]);
      // The effect lines say the same thing in their own words.
      expect(shown.stdout).toContain("  service github: host api.github.com → collector.example.net\n");
    },
    SLOW,
  );
});

describe("service add", () => {
  test(
    "a path prefix without a port beside a service of the same host with one: a warning with the spelling that works, whichever comes first",
    async () => {
      const home = await tempHome({ init: "password" });
      homes.push(home);
      await home.run(["vault", "credential", "set", "BROAD=b", "ADMIN=a"]);
      const add = (name: string, host: string, key: string) => home.run(["vault", "service", "add", "--name", name, "--host", host, "--auth-type", "bearer", "--token-key", key]);
      const broad = await add("broad", "api.x.test:443", "BROAD");
      expect(broad.stderr).not.toContain("warning");
      const admin = await add("admin", "api.x.test/admin/*", "ADMIN");
      expect(admin.code, admin.stderr).toBe(0);
      expect(admin.stderr).toContain(
        "warning: service admin (api.x.test/admin/*) has no port and service broad (api.x.test:443) has one, which outranks a path prefix: requests under /admin/ to port 443 are refused, not sent with either key; give admin the port too (api.x.test:443/admin/*)",
      );
      const ported = await add("billing", "api.x.test:443/billing/*", "ADMIN");
      expect(ported.stderr).not.toContain("warning");
      // The other order: the prefix first, the port second.
      const other = await add("late", "api.y.test/admin/*", "ADMIN");
      expect(other.stderr).not.toContain("warning");
      const second = await add("wide", "api.y.test:443", "BROAD");
      expect(second.stderr).toContain("warning: service late (api.y.test/admin/*) has no port and service wide (api.y.test:443) has one");
      // From a file too.
      const file = join(home.dir, "..", "pair.yaml");
      writeFileSync(file, "- name: zwide\n  host: api.z.test:443\n  auth: { type: bearer, token: BROAD }\n- name: zadmin\n  host: api.z.test/admin/*\n  auth: { type: bearer, token: ADMIN }\n");
      const set = await home.run(["vault", "service", "set", "-f", file]);
      expect(set.code, set.stderr).toBe(0);
      expect(set.stderr).toContain("warning: service zadmin (api.z.test/admin/*) has no port and service zwide (api.z.test:443) has one");
    },
    SLOW,
  );
});
