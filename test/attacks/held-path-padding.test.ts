// Attack (found by red-teaming): a request an approve rule holds is shown to the person as
// METHOD host/path, cut to the terminal's width (the TUI banner, `held list`). The agent pads the
// path with `./` segments and climbs back out with `../`: the person reads
// `POST api.fake.test/repos/mine/docs/./././././…`, allows it, and the server acts on
// /repos/theirs/prod/transfer, which the same rule (`POST /repos/*`) also covers. A held request
// must carry a path already in the form a server reads, so what the person sees is what is done:
// any other is refused before it is held, and nothing reaches the service. Broker and attacker:
// the unprivileged user.
import { beforeAll, describe, expect, test } from "bun:test";
import { type RawResponse } from "../support/proxy-client.ts";
import { agentWithPolicy, type Broker, brokerForFile, requestInTunnel } from "../support/upgrade-broker.ts";

let B: Broker;
let agentAuth: string;
const scratch = brokerForFile("av-held-padding-", (broker) => (B = broker));

beforeAll(async () => {
  agentAuth = await agentWithPolicy(B, scratch, 'rules:\n  - service: fake\n    approve:\n      - { methods: [POST], path: "/repos/*", timeout: 2s }\n');
}, 30_000);

function post(path: string): Promise<RawResponse | null> {
  return requestInTunnel(B, "POST", path, { auth: agentAuth, headers: [["Content-Type", "application/json"]], body: "{}" });
}

async function heldPaths(): Promise<string[]> {
  const listed = await B.cli(["held", "list", "--json"]);
  expect(listed.code, listed.stderr).toBe(0);
  return (JSON.parse(listed.stdout) as { path: string }[]).map((h) => h.path);
}

describe("what the person reads is what the server does", () => {
  test("a path padded with ./ and climbing out with ../, repeated slashes, escaped letters: refused, never held, nothing upstream", async () => {
    const padded = `/repos/mine/docs/${"./".repeat(60)}../../theirs/prod/transfer`;
    for (const path of [padded, "/repos/mine//docs/../../theirs/prod/transfer", "/repos/%74heirs/prod/transfer", "/repos/mine/docs/%2e%2e/%2e%2e/theirs/prod/transfer"]) {
      const wire = B.upstream.wire.length;
      const r = await post(path);
      expect(r?.status, `${path}: ${r?.text}`).toBe(400);
      expect(r?.headers["x-agent-vault-error"], path).toBe("invalid_request");
      expect(B.upstream.wire.length, path).toBe(wire);
      expect(await heldPaths(), path).not.toContain(path);
    }
  }, 30_000);

  test("a plain path is held as before (and times out here), with nothing upstream (control)", async () => {
    const wire = B.upstream.wire.length;
    const r = await post("/repos/mine/docs/issues?x=%2F");
    expect(r?.status, r?.text).toBe(403);
    expect(r?.headers["x-agent-vault-error"]).toBe("approval_timeout");
    expect(B.upstream.wire.length).toBe(wire);
    expect(await heldPaths()).toContain("/repos/mine/docs/issues?x=%2F");
  }, 30_000);

  test("nothing the agent got holds the credential", () => {
    for (const out of [...B.outputs, B.log()]) expect(out).not.toContain(B.secret);
  });
});
