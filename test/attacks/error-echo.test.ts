// Attack (red team, session 7, LOW): the upstream puts the value the proxy injected where a header
// name goes (`X-<key> : 1`, or a valid name `X-<key>` with a NUL in its value), so its answer is
// malformed and the proxy answers 502 itself. That message quoted the header's name, up to 40
// characters, and went unscrubbed to the agent, the request log (`agent-vault log`, no password)
// and `run`'s notices: the whole of a short key. The agent, as the unprivileged user, asks
// api.fake.test (bearer FAKE_KEY) for each malformed answer; no run of 8 characters of the value
// may be in the answer it gets or in the log, and the 502 still says what was wrong and where.
import { beforeAll, describe, expect, test } from "bun:test";
import { type IncomingMessage } from "node:http";
import { publicPrefixLength } from "../../src/proxy/secrets.ts";
import { type HttpConnection } from "../support/proxy-client.ts";
import { type Broker, brokerForFile } from "../support/upgrade-broker.ts";

let B: Broker;
brokerForFile("av-error-echo-", (broker) => (B = broker));

function value(req: IncomingMessage): string {
  return String(req.headers.authorization ?? "").replace(/^Bearer /, "");
}

/** Each malformed answer, with the injected value in it; the part the 502 names. */
const ANSWERS: Record<string, { head: (v: string) => string; names: string }> = {
  "space-before-colon": { head: (v) => `HTTP/1.1 200 OK\r\nX-${v} : 1\r\nContent-Length: 2\r\n\r\nok`, names: "header line 1 is not a token" },
  "value-nul": { head: (v) => `HTTP/1.1 200 OK\r\nX-${v}: 1\0\r\nContent-Length: 2\r\n\r\nok`, names: "in the value on header line 1" },
  "second-line": { head: (v) => `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n${v}@: 1\r\n\r\nok`, names: "header line 2 is not a token" },
};

beforeAll(() => {
  const base = B.upstream.handler!;
  B.upstream.handler = (req, res, body) => {
    const how = /^\/malformed\/([a-z-]+)$/.exec(req.url ?? "")?.[1];
    const answer = how ? ANSWERS[how] : undefined;
    if (!answer) return base(req, res, body);
    // Raw bytes: node's own writer would refuse such a header.
    res.socket!.end(answer.head(value(req)));
    return true;
  };
});

/** The first run of 8 characters of the value past its public prefix (any case) in `text`, or null. */
function runOfValue(text: string): string | null {
  const folded = text.toLowerCase();
  const secret = B.secret.toLowerCase().slice(publicPrefixLength("raw", B.secret.toLowerCase()));
  for (let i = 0; i + 8 <= secret.length; i++) if (folded.includes(secret.slice(i, i + 8))) return secret.slice(i, i + 8);
  return null;
}

describe("the proxy's own 502 for a malformed answer quotes none of it", () => {
  test("header names holding the value: the agent's answer, the request log and `agent-vault log`", async () => {
    for (const [how, { names }] of Object.entries(ANSWERS)) {
      const conn: HttpConnection = await B.tunnel("api.fake.test");
      const r = await conn.request("GET", `/malformed/${how}`, [["Host", "api.fake.test"]], undefined, 20_000);
      conn.close();
      const text = `${r.reason}\n${JSON.stringify(r.headers)}\n${r.body.toString("latin1")}`;
      B.outputs.push(text);
      expect(r.status, how).toBe(502);
      expect(runOfValue(text), how).toBeNull();
      expect(text, how).toContain(names);
    }
    expect(runOfValue(B.log()), "requests.log").toBeNull();
    const printed = await B.cli(["log", "--errors"]);
    B.outputs.push(printed.stdout, printed.stderr);
    expect(printed.stdout).toContain("malformed");
    expect(runOfValue(printed.stdout + printed.stderr), "agent-vault log").toBeNull();
  }, 60_000);
});
