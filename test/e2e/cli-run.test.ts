// `agent-vault run`'s own edges (issue 15), through the binary: a command that is not there or
// cannot be executed ends like it would in a shell (127, 126) before any password or session, and
// every CA variable a known client reads points at our bundle, replacing an inherited value.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type TempHome, tempHome } from "../support/binary.ts";

const SLOW = 60_000;
const homes: TempHome[] = [];
afterAll(() => {
  for (const home of homes) home.cleanup();
});

async function newHome(): Promise<TempHome> {
  const home = await tempHome({ init: "password" });
  homes.push(home);
  return home;
}

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.startsWith("agent-vault: error:"));
}

describe("run: the command", () => {
  test(
    "a command not on PATH exits 127 saying `command not found`, before asking for a password",
    async () => {
      const home = await newHome();
      for (const sandbox of [[], ["--no-sandbox"]]) {
        // No password anywhere and no terminal: reaching the unlock would be a password_required error.
        const r = await home.run(["run", ...sandbox, "--", "no-such-command-av15"], { env: { AGENT_VAULT_MASTER_PASSWORD: undefined } });
        expect(r.code, r.stderr).toBe(127);
        expect(errorLines(r.stderr)).toEqual(["agent-vault: error: no-such-command-av15: command not found"]);
        expect(r.stderr).not.toMatch(/ENOENT|password/);
      }
      const missing = await home.run(["run", "--no-sandbox", "--", "/nonexistent/dir/tool"], { env: { AGENT_VAULT_MASTER_PASSWORD: undefined } });
      expect(missing.code).toBe(127);
      expect(missing.stderr).toMatch(/\/nonexistent\/dir\/tool: no such file or directory/);
    },
    SLOW,
  );

  test(
    "a file that is not executable, or a directory, exits 126",
    async () => {
      const home = await newHome();
      const script = join(home.dir, "..", "not-executable.sh");
      writeFileSync(script, "#!/bin/sh\necho hi\n");
      chmodSync(script, 0o644);
      const dir = join(home.dir, "..", "a-directory");
      mkdirSync(dir);
      for (const target of [script, dir]) {
        const r = await home.run(["run", "--no-sandbox", "--", target]);
        expect(r.code, r.stderr).toBe(126);
        expect(r.stderr).toMatch(/permission denied/);
        expect(r.stderr).not.toMatch(/EACCES/);
      }
      // A real command still runs, and its own 127 is its own.
      const ok = await home.run(["run", "--no-sandbox", "--", "sh", "-c", "exit 127"]);
      expect(ok.code).toBe(127);
      expect(errorLines(ok.stderr)).toEqual([]);
    },
    SLOW,
  );
});

describe("run: CA variables", () => {
  test(
    "every CA variable is the bundle, inherited values replaced",
    async () => {
      const home = await newHome();
      const names = [
        "SSL_CERT_FILE",
        "NODE_EXTRA_CA_CERTS",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "AWS_CA_BUNDLE",
        "HTTPLIB2_CA_CERTS",
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
        "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
        "NIX_SSL_CERT_FILE",
        "CODEX_CA_CERTIFICATE",
      ];
      const inherited = Object.fromEntries(names.map((name) => [name, "/etc/inherited-bundle.pem"]));
      const r = await home.run(["run", "--no-sandbox", "--", "env"], { env: inherited });
      expect(r.code, r.stderr).toBe(0);
      const env = new Map(r.stdout.split("\n").map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
      const bundle = join(home.dir, "ca-bundle.pem");
      for (const name of names) expect(`${name}=${env.get(name)}`).toBe(`${name}=${bundle}`);
      expect(r.stdout).not.toContain("/etc/inherited-bundle.pem");
    },
    SLOW,
  );
});

describe("run: the CA bundle", () => {
  test(
    "holds every certificate of the system's bundle, and the agent-vault CA",
    async () => {
      const system = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"].find((path) => existsSync(path));
      if (!system) return; // no system bundle on this machine: nothing to carry over
      const home = await newHome();
      expect((await home.run(["ca", "path"])).code).toBe(0);
      const squash = (pem: string) => pem.replace(/\s+/g, "");
      const blocks = (text: string) => (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(squash);
      const bundle = new Set(blocks(readFileSync(join(home.dir, "ca-bundle.pem"), "utf8")));
      const missing = blocks(readFileSync(system, "utf8")).filter((pem) => !bundle.has(pem));
      expect(missing.length).toBe(0);
      expect(bundle.has(squash(readFileSync(join(home.dir, "ca.pem"), "utf8")))).toBe(true);
    },
    SLOW,
  );
});
