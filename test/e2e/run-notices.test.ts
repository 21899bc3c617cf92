// What `run` tells its user on stderr when the agent's requests fail (issue 15): the proxy's reason
// in words, once per host, whether run serves the proxy itself or a server does; never in the
// agent's own output. And a server started in the background does not say Ctrl-C stops it.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type TempHome, tempHome } from "../support/binary.ts";

const SLOW = 60_000;
const homes: TempHome[] = [];
afterAll(async () => {
  for (const home of homes) {
    await home.run(["server", "stop"]).catch(() => undefined);
    home.cleanup();
  }
});

async function newHome(): Promise<TempHome> {
  const home = await tempHome({ init: "password" });
  homes.push(home);
  return home;
}

function noticeLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.startsWith("agent-vault: ") && line.includes(" failed, "));
}

// Three tries at a name that cannot resolve (.invalid never does), through the proxy as a tunnel.
const CURL_THRICE = ["sh", "-c", "for i in 1 2 3; do curl -sS --max-time 10 https://no-such-host.invalid/ -o /dev/null; done; echo agent-done"];

describe("run says why a request failed, once per host", () => {
  test(
    "self-served: the reason on run's stderr, once; the agent's stdout has none of it",
    async () => {
      const home = await newHome();
      const r = await home.run(["run", "--no-sandbox", "--", ...CURL_THRICE]);
      expect(r.stdout.trim()).toBe("agent-done");
      const lines = noticeLines(r.stderr);
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^agent-vault: CONNECT no-such-host\.invalid failed, 502 upstream_error: cannot resolve no-such-host\.invalid/);
      expect(r.stdout).not.toContain("agent-vault:");
    },
    SLOW,
  );

  test(
    "with a server running in the background: the same line; the server's log does not say Ctrl-C",
    async () => {
      const home = await newHome();
      const started = await home.run(["server", "-d"]);
      expect(started.code, started.stderr).toBe(0);
      const r = await home.run(["run", "--no-sandbox", "--", ...CURL_THRICE]);
      expect(r.stdout.trim()).toBe("agent-done");
      expect(noticeLines(r.stderr), r.stderr).toHaveLength(1);
      const log = join(home.dir, "server.log");
      expect(existsSync(log)).toBe(true);
      const text = readFileSync(log, "utf8");
      expect(text).not.toContain("Ctrl-C");
      expect(text).toContain("agent-vault server stop");
    },
    SLOW,
  );

  test(
    "--quiet says nothing",
    async () => {
      const home = await newHome();
      const r = await home.run(["run", "--quiet", "--no-sandbox", "--", ...CURL_THRICE]);
      expect(noticeLines(r.stderr)).toEqual([]);
    },
    SLOW,
  );
});
