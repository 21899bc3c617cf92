// Placeholders without sockets: their shapes, the step over a Flow (only this session's, only to
// the credential's service, headers and query), and the streamed body's replacement at every cut.
import { afterEach, describe, expect, test } from "bun:test";
import { runPipeline } from "../../src/proxy/pipeline.ts";
import { authenticate } from "../../src/proxy/steps/authenticate.ts";
import { matchService } from "../../src/proxy/steps/match-service.ts";
import { placeholdersOf, substitutePlaceholders } from "../../src/proxy/steps/placeholders.ts";
import { bodySyntax, isCredentialName, StreamSubstituter, substituteWhole } from "../../src/proxy/substitute.ts";
import { derivePlaceholder, SHAPES, type ShapeName } from "../../src/vault/placeholders.ts";
import { stepFixture, type StepFixture } from "../support/flow.ts";

const CREDS = { GITHUB_TOKEN: "ghp_realvalue0123456789", OPENAI_API_KEY: "sk-real-openai-value" };
const SERVICES = [
  { name: "github", host: "api.github.com", auth: { type: "bearer", token: "GITHUB_TOKEN" } },
  { name: "openai", host: "api.openai.com", auth: { type: "bearer", token: "OPENAI_API_KEY" } },
];

let fx: StepFixture | null = null;
afterEach(() => fx?.cleanup());

describe("derivePlaceholder", () => {
  test("every shape: the prefix and length its vendor's keys have, deterministic per key and principal", () => {
    const key = Buffer.alloc(32, 7);
    for (const shape of Object.keys(SHAPES) as ShapeName[]) {
      const a = derivePlaceholder(key, "s_1", "K", shape);
      expect(derivePlaceholder(key, "s_1", "K", shape)).toBe(a);
      expect(derivePlaceholder(key, "s_2", "K", shape)).not.toBe(a);
      expect(derivePlaceholder(key, "s_1", "L", shape)).not.toBe(a);
      expect(derivePlaceholder(Buffer.alloc(32, 8), "s_1", "K", shape)).not.toBe(a);
      expect(a).toMatch(/^[A-Za-z0-9_.-]+$/);
    }
    expect(derivePlaceholder(key, "s_1", "K", "openai")).toMatch(/^sk-proj-[A-Za-z0-9_-]{156}$/);
    expect(derivePlaceholder(key, "s_1", "K", "anthropic")).toMatch(/^sk-ant-api03-[A-Za-z0-9_-]{93}AA$/);
    expect(derivePlaceholder(key, "s_1", "K", "github")).toMatch(/^ghp_[A-Za-z0-9]{36}$/);
  });
});

describe("substitutePlaceholders", () => {
  async function flowWith(host: string, path: string, headers: Record<string, string>) {
    const flow = fx!.flow({ host, path, headers });
    await runPipeline(flow, fx!.context(), [authenticate, matchService]);
    return flow;
  }

  test("this session's placeholder in a header and the query, to its service: the value; none stored on the flow", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    const probe = fx.flow({ host: "api.github.com", path: "/" });
    await runPipeline(probe, fx.context(), [authenticate, matchService]);
    const [ph] = placeholdersOf(probe, fx.context());
    const flow = await flowWith("api.github.com", `/user?access_token=${ph!.placeholder}&t=${ph!.placeholder}&x=1`, { "x-token": `token ${ph!.placeholder}` });
    substitutePlaceholders(flow, fx!.context());
    expect(flow.headers["x-token"]).toBe(`token ${CREDS.GITHUB_TOKEN}`);
    expect(flow.path).toBe(`/user?access_token=${CREDS.GITHUB_TOKEN}&t=${ph!.placeholder}&x=1`);
    expect(flow.substitutions!().map((s) => s.value)).toEqual([CREDS.GITHUB_TOKEN]);
    // The flow's own fields (what a log or an error could read) name keys, never values.
    const { headers: _h, path: _p, substitutions: _s, ...rest } = flow;
    expect(JSON.stringify(rest)).not.toContain(CREDS.GITHUB_TOKEN);
  });

  test("only in a header that carries a credential: a title, a file name or a User-Agent keeps the placeholder", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    const probe = fx.flow({ host: "api.github.com", path: "/" });
    await runPipeline(probe, fx.context(), [authenticate, matchService]);
    const [ph] = placeholdersOf(probe, fx.context());
    const p = ph!.placeholder;
    const flow = await flowWith("api.github.com", "/", {
      authorization: `Bearer ${p}`,
      "x-api-key": p,
      "private-token": p,
      "x-title": p,
      "user-agent": `agent/1 ${p}`,
      "content-disposition": `attachment; filename="${p}"`,
      "x-echo": `%${p}`,
      cookie: `session=${p}`,
    });
    substitutePlaceholders(flow, fx!.context());
    for (const name of ["authorization", "x-api-key", "private-token"]) expect(String(flow.headers[name])).toContain(CREDS.GITHUB_TOKEN);
    for (const name of ["x-title", "user-agent", "content-disposition", "x-echo", "cookie"]) {
      expect(String(flow.headers[name])).toContain(p);
      expect(String(flow.headers[name])).not.toContain(CREDS.GITHUB_TOKEN);
    }
  });

  test("the path before the query is left alone (the request log keeps it)", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    const probe = fx.flow({ host: "api.github.com", path: "/" });
    await runPipeline(probe, fx.context(), [authenticate, matchService]);
    const [ph] = placeholdersOf(probe, fx.context());
    const flow = await flowWith("api.github.com", `/bot${ph!.placeholder}/send`, {});
    substitutePlaceholders(flow, fx!.context());
    expect(flow.path).toBe(`/bot${ph!.placeholder}/send`);
  });

  test("to another service's host or no service: nothing is replaced and no substitutions are set", async () => {
    fx = await stepFixture(CREDS, SERVICES);
    const probe = fx.flow({ host: "api.github.com", path: "/" });
    await runPipeline(probe, fx.context(), [authenticate, matchService]);
    const [ph] = placeholdersOf(probe, fx.context());
    for (const host of ["api.openai.com", "evil.example"]) {
      const flow = await flowWith(host, `/?access_token=${ph!.placeholder}`, { "x-token": ph!.placeholder });
      substitutePlaceholders(flow, fx!.context());
      expect(flow.headers["x-token"]).toBe(ph!.placeholder);
      expect(flow.path).toBe(`/?access_token=${ph!.placeholder}`);
      expect(flow.substitutions?.().some((s) => s.key === "GITHUB_TOKEN") ?? false).toBe(false);
    }
  });
});

describe("substituteWhole: only a credential field's value", () => {
  const subs = [{ key: "K", placeholder: "ph_ABCDEFGHIJKLMNOP", value: "real-value" }];
  const ph = "ph_ABCDEFGHIJKLMNOP";
  const cases: [string, string][] = [
    [`{"op":2,"d":{"token":"${ph}","intents":513}}`, `{"op":2,"d":{"token":"real-value","intents":513}}`],
    [`{"Authorization": "Bearer ${ph}"}`, `{"Authorization": "Bearer real-value"}`],
    [`token=${ph}&channel=C1&text=hi`, `token=real-value&channel=C1&text=hi`],
    [`channel=C1&api_key=${ph}`, `channel=C1&api_key=real-value`],
    // Where a service would store it for the agent to read back elsewhere: left as it is.
    [`{"files":{".env":{"content":"GITHUB_TOKEN=${ph}"}}}`, `{"files":{".env":{"content":"GITHUB_TOKEN=${ph}"}}}`],
    [`channel=C1&text=${ph}`, `channel=C1&text=${ph}`],
    [`{"body":"my token is ${ph}"}`, `{"body":"my token is ${ph}"}`],
    [`{"title":"x","value":"${ph}"}`, `{"title":"x","value":"${ph}"}`],
    // Red team: a field of one syntax written inside a value (content a service stores), a name that
    // only contains a credential word, a placeholder that is not the whole value.
    [`{"files":{"notes.txt":{"content":"cfg&token=${ph}"}}}`, `{"files":{"notes.txt":{"content":"cfg&token=${ph}"}}}`],
    [`{"content":"https://x.test/?api_key=${ph}"}`, `{"content":"https://x.test/?api_key=${ph}"}`],
    [`{"description":"?secret=Bearer ${ph}"}`, `{"description":"?secret=Bearer ${ph}"}`],
    [`{"content":"\\"token\\": \\"${ph}\\""}`, `{"content":"\\"token\\": \\"${ph}\\""}`],
    [`{"token":"${ph} and more"}`, `{"token":"${ph} and more"}`],
    [`title=x&monkey=${ph}`, `title=x&monkey=${ph}`],
    [`title=x&keywords=${ph}`, `title=x&keywords=${ph}`],
    [`body={"token":"${ph}"}`, `body={"token":"${ph}"}`],
    [`text=what?token=${ph}`, `text=what?token=${ph}`],
    [`token=${ph}x&a=1`, `token=${ph}x&a=1`],
  ];
  for (const [input, output] of cases) {
    test(input, () => expect(substituteWhole(Buffer.from(input), subs, bodySyntax(undefined, Buffer.from(input))).toString()).toBe(output));
  }
});

describe("which names and bodies have credential fields", () => {
  test("names: whole words, camelCase split; Idempotency-Key and Sec-WebSocket-Key are not credentials", () => {
    for (const name of ["Authorization", "X-Api-Key", "x-api-key", "Private-Token", "access_token", "apiKey", "clientSecret", "oauth_token", "password", "X-Auth-Token", "key", "apikey"])
      expect(isCredentialName(name), name).toBe(true);
    for (const name of ["monkey", "keywords", "X-Author", "author", "Idempotency-Key", "Sec-WebSocket-Key", "x-title", "content", "turkey"]) expect(isCredentialName(name), name).toBe(false);
  });

  test("bodies: JSON and forms by Content-Type, multipart and text have none, no type sniffs a first { or [", () => {
    const b = Buffer.from("token=x");
    expect(bodySyntax("application/json; charset=utf-8", b)).toBe("json");
    expect(bodySyntax("application/vnd.api+json", b)).toBe("json");
    expect(bodySyntax("application/x-www-form-urlencoded", b)).toBe("form");
    expect(bodySyntax("multipart/form-data; boundary=x", b)).toBe("none");
    expect(bodySyntax("text/plain", b)).toBe("none");
    expect(bodySyntax(undefined, Buffer.from(' \n{"token":"x"}'))).toBe("json");
    expect(bodySyntax(undefined, b)).toBe("form");
    // A multipart upload whose file holds `&token=PH` keeps the placeholder.
    const multipart = Buffer.from(`--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nhello&token=ph_ABCDEFGHIJKLMNOP\r\n--x--\r\n`);
    const subs = [{ key: "K", placeholder: "ph_ABCDEFGHIJKLMNOP", value: "real-value" }];
    expect(substituteWhole(multipart, subs, bodySyntax("multipart/form-data; boundary=x", multipart)).equals(multipart)).toBe(true);
  });
});

describe("StreamSubstituter", () => {
  const subs = [{ key: "K", placeholder: "ph_ABCDEFGHIJKLMNOP", value: "real-värde" }];
  const body = `token=ph_ABCDEFGHIJKLMNOP&b=xph_ABCDEFGHIJKLMNOPph_ABCDEFGHIJKLMNOP&secret=ph_ABCDEFGHIJKLMNOP&c=ph_ABCDEFG`;
  const expected = substituteWhole(Buffer.from(body), subs, "form").toString("utf8");

  test("every cut into two or three pieces gives what the whole body gives", () => {
    expect(expected).toBe("token=real-värde&b=xph_ABCDEFGHIJKLMNOPph_ABCDEFGHIJKLMNOP&secret=real-värde&c=ph_ABCDEFG");
    for (let i = 0; i <= body.length; i++) {
      for (let j = i; j <= body.length; j += 3) {
        const s = new StreamSubstituter(subs, "form");
        const out = Buffer.concat([s.push(Buffer.from(body.slice(0, i))), s.push(Buffer.from(body.slice(i, j))), s.push(Buffer.from(body.slice(j))), s.end()]);
        expect(out.toString("utf8")).toBe(expected);
      }
    }
  });
});
