// Attack: the agent gets its placeholder replaced where the rules say it stays, through the two
// HTTP paths test/attacks/placeholders.test.ts does not take: the agent API's explicit route
// (`$AGENT_VAULT_ADDR/proxy/api.github.com/...`, one request per connection and several pipelined
// on one), and pipelining in an intercepted tunnel (every request in one write, and writes cut so
// that a body ends in the same read as the next request's head, a chunked one included). Each route
// sends the same spots: a credential header, whole credential fields in a form, a JSON body and
// the query (the value goes there), and a title, a User-Agent, a cookie, a file name, form and
// JSON syntax written into headers, JSON string values holding `cfg&token=PH`, a form value holding
// `{"token":"PH"}`, a multipart body and the path (the placeholder stays, as written). A request
// follows a body of the syntax its headers imitate, so a body read past its end would show. Broker
// and attacker (a Python writer) run as the unprivileged user; the test process only reads wires.
import { beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { homePaths } from "../../src/shared/paths.ts";
import { derivePlaceholder, placeholderKeyOf } from "../../src/vault/placeholders.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { VaultStore } from "../../src/vault/vault.ts";
import { asAgent } from "../support/attacker.ts";
import { cleanEnv, recordingCli, TEST_PASSWORD, type TempHome } from "../support/binary.ts";
import { spawnLive } from "../support/process.ts";
import { basicProxyAuth } from "../support/proxy-client.ts";
import { agentHome, fileScene, leakedForms } from "../support/scene.ts";
import { startServer, type Server } from "../support/server.ts";
import { agentUpstream, replyOk, type Upstream } from "../support/upstream.ts";

const SECRET = `ghp_canary${randomBytes(13).toString("hex")}`;
const scene = fileScene("av-placeholder-routes-", { absent: [SECRET] });
const { scratch, cleanups, outputs } = scene;
const HOST = "api.github.com";

let H: TempHome;
let U: Upstream;
let S: Server;
/** The session the attacker uses, its placeholder for GITHUB_TOKEN, and the broker's CA for its TLS. */
let TOKEN: string;
let PH: string;
let CA: string;

/**
 * One request the attacker sends on every route. The agent writes its placeholder at both marks;
 * on the upstream's wire `@P@` must still be the placeholder and `@V@` is the one spot the rules
 * give the value (a credential header, a credential field's whole value in the body's own syntax).
 */
interface Spot {
  readonly method: string;
  readonly path: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body?: string;
  /** Sent chunked, in two chunks cut inside the body's last placeholder, then this trailer field. */
  readonly chunked?: { readonly trailer: readonly [string, string] };
}

/** Headers a service may store or decode, and form and JSON field syntax written into them. */
const HEADER_SPOTS = [
  ["X-Api-Key", "@V@"],
  ["X-Title", "@P@"],
  ["User-Agent", "agent/1 @P@"],
  ["Cookie", "session=@P@; token=@P@"],
  ["Content-Disposition", "attachment; filename=@P@"],
  ["X-Note", "cfg&token=@P@&"],
  ["X-Json", ',"token":"@P@"'],
] as const;

const FORM = "application/x-www-form-urlencoded";
const MULTIPART_BODY = [
  '--XyZ\r\nContent-Disposition: form-data; name="token"\r\n\r\n@P@\r\n',
  '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.json"\r\nContent-Type: application/json\r\n\r\n{"token":"@P@"}\r\n',
  '--XyZ\r\nContent-Disposition: form-data; name="q"\r\n\r\na&token=@P@&\r\n--XyZ--\r\n',
].join("");

/** In this order: each header spot follows a body whose syntax it imitates. */
const SPOTS: Record<string, Spot> = {
  form: { method: "POST", path: "/form", headers: [["Content-Type", FORM]], body: 'title=x&monkey=@P@&body={"token":"@P@"}&q=token=@P@&access_token=@V@' },
  "headers-a": { method: "GET", path: "/headers-a", headers: HEADER_SPOTS },
  gists: {
    method: "POST",
    path: "/gists",
    headers: [["Content-Type", "application/json"]],
    body: '{"files":{"notes.txt":{"content":"cfg&token=@P@"}},"description":"?api_key=Bearer @P@","title":"@P@","token":"@V@"}',
  },
  "headers-b": { method: "GET", path: "/headers-b", headers: HEADER_SPOTS },
  upload: { method: "POST", path: "/upload", headers: [["Content-Type", "multipart/form-data; boundary=XyZ"]], body: MULTIPART_BODY },
  chunked: { method: "POST", path: "/chunked", headers: [["Content-Type", FORM]], body: "title=x&monkey=@P@&access_token=@V@", chunked: { trailer: ["X-Note", "cfg&token=@P@&"] } },
  "headers-c": { method: "GET", path: "/headers-c", headers: HEADER_SPOTS },
  path: { method: "GET", path: "/repos/@P@/token=@P@/issues?q=token=@P@&title=@P@&access_token=@V@", headers: [] },
};

/** How the attacker reaches GitHub: a tunnel through the proxy port, or the API's /proxy/ route. */
type Route = "tunnel" | "explicit";

/** What the agent writes: every mark is its placeholder. */
const written = (template: string) => template.replaceAll("@P@", PH).replaceAll("@V@", PH);
/** What must reach the upstream. */
const expected = (template: string) => template.replaceAll("@P@", PH).replaceAll("@V@", SECRET);
/** How many values a spot's request must carry: the injected Authorization and each `@V@`. */
const valuesIn = (spot: Spot) => 1 + [spot.path, ...spot.headers.map(([, v]) => v), spot.body ?? ""].join("\n").split("@V@").length - 1;

/** One request's bytes, for `route`, under `/tag`; the last of a connection closes it. */
function requestBytes(route: Route, tag: string, spot: Spot, last: boolean): string {
  const target = route === "explicit" ? `/proxy/${HOST}/${tag}${written(spot.path)}` : `/${tag}${written(spot.path)}`;
  const lines = [`${spot.method} ${target} HTTP/1.1`, `Host: ${route === "explicit" ? "127.0.0.1" : HOST}`];
  if (route === "explicit") lines.push(`Authorization: Bearer ${TOKEN}`);
  for (const [name, value] of spot.headers) lines.push(`${name}: ${written(value)}`);
  if (last) lines.push("Connection: close");
  const body = spot.body === undefined ? "" : written(spot.body);
  if (!spot.chunked) {
    if (spot.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    return `${lines.join("\r\n")}\r\n\r\n${body}`;
  }
  // Cut inside the last placeholder: the proxy must join the chunks before it judges the field.
  const cut = body.lastIndexOf(PH) + PH.length / 2;
  const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  lines.push("Transfer-Encoding: chunked");
  // A trailer is not passed on (the proxy writes its own framing): its placeholder goes nowhere.
  const [name, value] = spot.chunked.trailer;
  return `${lines.join("\r\n")}\r\n\r\n${chunk(body.slice(0, cut))}${chunk(body.slice(cut))}0\r\n${name}: ${written(value)}\r\n\r\n`;
}

/** A connection the attacker opens and the writes it makes on it, `pauseMs` apart. */
interface Connection {
  readonly name: string;
  readonly port: number;
  /** The CONNECT for a tunnel (TLS to api.github.com follows it); absent on the API port. */
  readonly connect?: string;
  readonly writes: readonly string[];
  readonly pauseMs: number;
}

function connection(route: Route, name: string, tag: string, names: readonly string[], cutInBodies: boolean): Connection {
  const stream = names.map((n, i) => requestBytes(route, tag, SPOTS[n]!, i === names.length - 1)).join("");
  // Cut each request with a body in the middle of the last placeholder past its head (the chunked
  // one's is in its trailer): the rest of a body, the next request's head and the start of its
  // body then arrive in one read.
  const cuts: number[] = [];
  if (cutInBodies) {
    let at = 0;
    for (const [i, n] of names.entries()) {
      const bytes = requestBytes(route, tag, SPOTS[n]!, i === names.length - 1);
      const head = bytes.indexOf("\r\n\r\n") + 4;
      const last = bytes.lastIndexOf(PH);
      if (last > head) cuts.push(at + last + PH.length / 2);
      at += bytes.length;
    }
  }
  const writes = [0, ...cuts].map((from, i) => stream.slice(from, cuts[i] ?? stream.length));
  const port = route === "explicit" ? S.apiPort : S.mitmPort;
  const connect = route === "tunnel" ? `CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\nProxy-Authorization: ${basicProxyAuth(TOKEN)}\r\n\r\n` : undefined;
  return { name, port, writes, pauseMs: 300, ...(connect ? { connect } : {}) };
}

/**
 * The attacker: writes each connection's bytes as given (one sendall per write, so each is one TLS
 * record or TCP segment), then reads until the proxy closes, and prints what it got as JSON lines.
 */
const WRITER = String.raw`
import json, socket, ssl, sys, time
plan = json.load(open(sys.argv[1]))
ctx = ssl.create_default_context(cafile=plan["ca"])
for conn in plan["connections"]:
    s = socket.create_connection(("127.0.0.1", conn["port"]), timeout=15)
    if "connect" in conn:
        s.sendall(conn["connect"].encode("latin1"))
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(1)
            if not d: break
            head += d
        if not head.startswith(b"HTTP/1.1 200"):
            print(json.dumps({"name": conn["name"], "raw": head.decode("latin1")}), flush=True)
            continue
        s = ctx.wrap_socket(s, server_hostname="${HOST}")
    for i, w in enumerate(conn["writes"]):
        if i: time.sleep(conn["pauseMs"] / 1000)
        s.sendall(w.encode("latin1"))
    raw = b""
    try:
        while True:
            d = s.recv(65536)
            if not d: break
            raw += d
    except OSError:
        pass
    print(json.dumps({"name": conn["name"], "raw": raw.decode("latin1")}), flush=True)
`;

/** Every form of the value the guard knows would be a leak just as well: raw, base64, hex. */
const leaks = (text: string) => leakedForms(text, [SECRET]);

beforeAll(async () => {
  const up = await agentUpstream(scratch, HOST, cleanups, replyOk);
  U = up.upstream;
  const env = up.env;
  H = await agentHome(scene);
  const { ok } = recordingCli(
    () => H,
    () => env,
    outputs,
  );
  await ok(["vault", "credential", "set", "GITHUB_TOKEN=-"], SECRET);
  await ok(["vault", "service", "add", "--template", "github"]);
  S = await startServer(H, env, cleanups);
  // The attacker's session, as `run` makes one; its placeholder is what `run` would hand it.
  process.env.AGENT_VAULT_INSECURE_TEST_KDF = "1";
  const store = await VaultStore.unlock(homePaths(H.dir), async () => TEST_PASSWORD);
  const made = await createSession(store, "default", {});
  H.reown();
  TOKEN = made.token;
  PH = derivePlaceholder(placeholderKeyOf(store), made.session.id, "GITHUB_TOKEN", "github");
  CA = join(H.dir, "ca.pem");
}, 60_000);

/** Runs the attacker over `connections`; returns what each connection received, by name. */
async function attack(connections: readonly Connection[]): Promise<Map<string, string>> {
  const plan = join(scratch, `plan-${randomBytes(4).toString("hex")}.json`);
  const script = join(scratch, "writer.py");
  writeFileSync(script, WRITER);
  writeFileSync(plan, JSON.stringify({ ca: CA, connections }));
  const live = spawnLive(asAgent(["/usr/bin/python3", script, plan]), cleanEnv(), "ignore");
  cleanups.push(() => void (live.proc.exitCode === null && live.proc.kill("SIGKILL")));
  const code = await live.proc.exited;
  outputs.push(live.stdout, live.stderr);
  expect(code, live.stderr).toBe(0);
  const got = new Map<string, string>();
  for (const line of live.stdout.trim().split("\n")) {
    const { name, raw } = JSON.parse(line) as { name: string; raw: string };
    got.set(name, raw);
  }
  expect([...got.keys()].sort()).toEqual(connections.map((c) => c.name).sort());
  return got;
}

/**
 * Every spot of `names` under `/tag` reached GitHub with the value exactly where the rules allow,
 * and only there. Wrong spots are listed by name (never by value), all at once.
 */
function expectSpotsAsRuled(tag: string, names: readonly string[]): void {
  const wrong: string[] = [];
  const check = (label: string, got: unknown, want: string) => {
    if (got !== want) wrong.push(`${label}: ${typeof got !== "string" ? "missing" : leaks(got).length > 0 ? "holds the value" : "changed"}`);
  };
  for (const name of names) {
    const spot = SPOTS[name]!;
    const label = `${tag} ${name}`;
    const url = `/${tag}${expected(spot.path)}`;
    const matching = U.received.filter((r) => r.host === HOST && r.url.split("?")[0] === url.split("?")[0]);
    if (matching.length !== 1) {
      wrong.push(`${label}: reached GitHub ${matching.length} times`);
      continue;
    }
    const r = matching[0]!;
    check(`${label} method`, r.method, spot.method);
    check(`${label} path and query`, r.url, url);
    // The service's own credential, injected (the explicit route's session token never goes).
    check(`${label} Authorization`, r.headers.authorization, `Bearer ${SECRET}`);
    for (const [header, value] of spot.headers) check(`${label} ${header}`, r.headers[header.toLowerCase()], expected(value));
    if (spot.body !== undefined) check(`${label} body`, r.body.toString("latin1"), expected(spot.body));
    // No other header carries the value in any form.
    const allowed = new Set(["authorization", ...spot.headers.filter(([, v]) => v.includes("@V@")).map(([h]) => h.toLowerCase())]);
    const others = Object.entries(r.headers).filter(([h]) => !allowed.has(h));
    if (leaks(JSON.stringify(others)).length > 0) wrong.push(`${label}: another header holds the value`);
  }
  expect(wrong).toEqual([]);
}

/** The wire to GitHub holds exactly `count` copies of the value and no other form of it. */
function expectWireValues(since: number, count: number): void {
  const wire = Buffer.concat(
    U.wire
      .slice(since)
      .filter((w) => w.sni === HOST)
      .map((w) => w.data),
  ).toString("latin1");
  expect(wire.length).toBeGreaterThan(0);
  expect(wire.split(SECRET).length - 1).toBe(count);
  expect(leaks(wire.replaceAll(SECRET, ""))).toEqual([]);
}

/** Every request of the connection was answered 200 and nothing the agent got holds the value. */
function expectAnswered(got: Map<string, string>, name: string, requests: number): void {
  const raw = got.get(name) ?? "";
  const statuses: string[] = raw.match(/HTTP\/1\.1 \d{3}/g) ?? [];
  expect(statuses, `${name}: ${raw}`).toEqual(Array<string>(requests).fill("HTTP/1.1 200"));
  expect(leaks(raw), name).toEqual([]);
}

const ALL = Object.keys(SPOTS);
const valuesOf = (names: readonly string[]) => names.reduce((n, name) => n + valuesIn(SPOTS[name]!), 0);

describe("placeholders through the explicit route and pipelined requests: the value only where the rules put it", () => {
  test("the agent API's /proxy/ route, one request a connection and all pipelined on one", async () => {
    const since = U.wire.length;
    const single = ALL.map((name) => connection("explicit", `explicit ${name}`, "explicit", [name], false));
    const piped = connection("explicit", "explicit-piped", "explicit-piped", ALL, false);
    expect(piped.writes.length).toBe(1);
    const got = await attack([...single, piped]);
    for (const name of ALL) expectAnswered(got, `explicit ${name}`, 1);
    expectAnswered(got, "explicit-piped", ALL.length);
    expectSpotsAsRuled("explicit", ALL);
    expectSpotsAsRuled("explicit-piped", ALL);
    expectWireValues(since, 2 * valuesOf(ALL));
    expect(readFileSync(join(H.dir, "requests.log"), "utf8")).not.toContain(SECRET);
  }, 60_000);

  test("pipelined in a tunnel: all in one write, and bodies ending in the read that holds the next head", async () => {
    const since = U.wire.length;
    const piped = connection("tunnel", "piped", "piped", ALL, false);
    const split = connection("tunnel", "split", "split", ALL, true);
    expect(piped.writes.length).toBe(1);
    // Every request with a placeholder past its head is cut: form, gists, upload, chunked.
    expect(split.writes.length).toBe(5);
    const got = await attack([piped, split]);
    expectAnswered(got, "piped", ALL.length);
    expectAnswered(got, "split", ALL.length);
    expectSpotsAsRuled("piped", ALL);
    expectSpotsAsRuled("split", ALL);
    expectWireValues(since, 2 * valuesOf(ALL));
    expect(readFileSync(join(H.dir, "requests.log"), "utf8")).not.toContain(SECRET);
  }, 60_000);
});
