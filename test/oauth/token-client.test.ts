// The token endpoint client against hostile or broken endpoints (a local HTTPS server with the test
// CA): every failure is a TokenEndpointError whose reason names what went wrong, says whether it
// is worth retrying, and never repeats a token; nothing crashes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TokenEndpointError, type TokenNet, tokenRequest } from "../../src/oauth/token-client.ts";
import { netguardOptionsFromEnv } from "../../src/net/netguard.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

const dir = mkdtempSync(join(tmpdir(), "av-token-client-"));
let U: Upstream;
let NET: TokenNet;
const CLIENT = { token_url: "https://token.test/token", client_id: "cli", token_auth_method: "none" as const };
const PARAMS = { grant_type: "refresh_token", refresh_token: "rt-secret-canary-123" };

beforeAll(async () => {
  U = await startUpstream(dir);
  NET = { netguard: netguardOptionsFromEnv({ AGENT_VAULT_CONNECT_TO: `token.test:443:127.0.0.1:${U.port}` }), trust: [readFileSync(U.caFile, "utf8")] };
});
afterAll(async () => {
  await U.close();
  rmSync(dir, { recursive: true, force: true });
});

function answer(status: number, body: string, type = "application/json"): void {
  U.handler = (_req, res) => {
    res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
    res.end(body);
    return true;
  };
}

async function failure(client = CLIENT, net = NET): Promise<TokenEndpointError> {
  try {
    await tokenRequest(client, PARAMS, net);
  } catch (error) {
    expect(error).toBeInstanceOf(TokenEndpointError);
    expect((error as Error).message).not.toContain("rt-secret-canary-123");
    return error as TokenEndpointError;
  }
  throw new Error("expected a failure");
}

describe("token endpoint answers", () => {
  test("a good answer is parsed; the request is a form with the grant and client id", async () => {
    answer(200, JSON.stringify({ access_token: "at", refresh_token: "rt2", expires_in: 3600, token_type: "Bearer" }));
    const tokens = await tokenRequest(CLIENT, PARAMS, NET);
    expect(tokens).toEqual({ access_token: "at", refresh_token: "rt2", expires_in: 3600, scope: undefined });
    const sent = U.received.at(-1)!;
    expect(sent.method).toBe("POST");
    expect(sent.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(Object.fromEntries(new URLSearchParams(sent.body.toString()))).toEqual({ ...PARAMS, client_id: "cli" });
  });

  test("client_secret_basic sends the form-encoded pair in Authorization, not in the body", async () => {
    answer(200, JSON.stringify({ access_token: "at" }));
    await tokenRequest({ ...CLIENT, client_secret: "s3cr et:+", token_auth_method: "client_secret_basic" }, PARAMS, NET);
    const sent = U.received.at(-1)!;
    expect(Buffer.from(String(sent.headers.authorization).replace("Basic ", ""), "base64").toString()).toBe("cli:s3cr+et%3A%2B");
    expect(sent.body.toString()).not.toContain("client");
  });

  test("GitHub-style form-encoded answers and 200-with-error are understood", async () => {
    answer(200, "access_token=at-form&scope=repo&token_type=bearer", "application/x-www-form-urlencoded");
    expect((await tokenRequest(CLIENT, PARAMS, NET)).access_token).toBe("at-form");
    answer(200, JSON.stringify({ error: "bad_refresh_token", error_description: "The refresh token passed is incorrect or expired." }));
    const e = await failure();
    expect(e.permanent).toBe(true);
    expect(e.reason).toContain("bad_refresh_token: The refresh token passed is incorrect or expired.");
  });

  test("a reason that quotes what was sent, whole or cut short, is not passed on (it reaches the agent)", async () => {
    for (const description of ["refresh token rt-secret-canary-123 is not valid", "bad token 'rt-secret-ca…'", "…canary-123 expired"]) {
      answer(400, JSON.stringify({ error: "invalid_grant", error_description: description }));
      const e = await failure();
      expect(e.permanent).toBe(true);
      expect(e.reason).toBe("token.test refused, quoting what was sent (its reason is not shown: HTTP 400)");
    }
    // Seven characters are not a quote: the reason is kept.
    answer(400, JSON.stringify({ error: "invalid_grant", error_description: "token rt-secr unknown" }));
    expect((await failure()).reason).toContain("invalid_grant: token rt-secr unknown");
  });

  test("4xx is permanent, 5xx / 408 / 429 are transient", async () => {
    for (const [status, permanent] of [
      [400, true],
      [401, true],
      [403, true],
      [408, false],
      [429, false],
      [500, false],
      [503, false],
    ] as const) {
      answer(status, JSON.stringify({ error: "x", error_description: `status ${status}` }));
      const e = await failure();
      expect(e.permanent).toBe(permanent);
      expect(e.reason).toContain(`HTTP ${status}`);
    }
  });

  test("garbage, HTML, an empty 200 and control characters give a clear reason", async () => {
    answer(200, "<html>oops</html>", "text/html");
    expect((await failure()).reason).toContain("answered without an access_token");
    answer(200, "{not json");
    expect((await failure()).reason).toContain("answered without an access_token");
    answer(400, JSON.stringify({ error: "invalid_grant\u001b[31m", error_description: "line1\nline2" }));
    const e = await failure();
    expect(e.reason).not.toMatch(/[\x00-\x1f]/);
    expect(e.reason).toContain("invalid_grant");
  });

  test("garbage inside TLS, or a connection cut mid-answer, is a transient error, not a crash", async () => {
    U.handler = (_req, res) => {
      res.socket!.end("NOT HTTP AT ALL\r\n\r\n");
      return true;
    };
    let e = await failure();
    expect(e.permanent).toBe(false);
    expect(e.reason).toContain("malformed answer (malformed status line)");
    U.handler = (_req, res) => {
      res.socket!.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"access');
      return true;
    };
    e = await failure();
    expect(e.permanent).toBe(false);
    expect(e.reason).toMatch(/closed/);
  });

  test("the answer is read by the strict HTTP/1.1 parser: chunked with trailers and a 100 Continue first is fine", async () => {
    const json = JSON.stringify({ access_token: "at-chunked" });
    U.handler = (_req, res) => {
      const cut = 7;
      res.socket!.end(
        `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n` +
          `${cut.toString(16)}\r\n${json.slice(0, cut)}\r\n${(json.length - cut).toString(16)};ext=1\r\n${json.slice(cut)}\r\n0\r\nX-T: 1\r\n\r\n`,
      );
      return true;
    };
    expect((await tokenRequest(CLIENT, PARAMS, NET)).access_token).toBe("at-chunked");
    const sent = U.wire.at(-1)!.data.toString("latin1");
    expect(sent.startsWith("POST /token HTTP/1.1\r\nhost: token.test\r\n")).toBe(true);
    expect(sent).toContain("\r\nconnection: close\r\n\r\n");
  });

  test("framing an old parser misread (0x chunk size, no CRLF after chunk data, LF-only lines, two lengths) is refused, not a token", async () => {
    const json = JSON.stringify({ access_token: "at-smuggled" });
    const size = json.length.toString(16);
    const forms = [
      `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n0x${size}\r\n${json}\r\n0\r\n\r\n`,
      `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${size}\r\n${json}XX0\r\n\r\n`,
      `HTTP/1.1 200 OK\ncontent-type: application/json\ncontent-length: ${json.length}\n\n${json}`,
      `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${json.length}\r\ncontent-length: 2\r\n\r\n${json}`,
    ];
    for (const form of forms) {
      U.handler = (_req, res) => {
        res.socket!.end(form);
        return true;
      };
      const e = await failure();
      expect(e.permanent).toBe(false);
      expect(e.reason).toContain("malformed answer");
    }
  });

  test("an answer over 1 MiB is refused without being kept", async () => {
    U.handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`{"access_token":"${"a".repeat(2 * 1024 * 1024)}"}`);
      return true;
    };
    const e = await failure();
    expect(e.reason).toContain("larger than 1 MiB");
  });

  test("a server that does not speak TLS is a permanent failure naming the endpoint", async () => {
    const server = net.createServer((socket) => socket.once("data", () => socket.end("NOT TLS\r\n\r\n")));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const port = (server.address() as net.AddressInfo).port;
    const plain: TokenNet = { netguard: netguardOptionsFromEnv({ AGENT_VAULT_CONNECT_TO: `token.test:443:127.0.0.1:${port}` }), trust: NET.trust };
    const e = await failure(CLIENT, plain);
    expect(e.reason).toContain("cannot reach token endpoint token.test");
    server.close();
  });

  test("netguard: a token URL resolving to loopback is refused (permanent); http:// is refused", async () => {
    const guarded: TokenNet = { netguard: netguardOptionsFromEnv({}), trust: NET.trust };
    const e = await failure({ ...CLIENT, token_url: "https://127.0.0.1:1/token" }, guarded);
    expect(e.permanent).toBe(true);
    expect(e.reason).toContain("private or reserved address");
    await expect(tokenRequest({ ...CLIENT, token_url: "http://token.test/token" }, PARAMS, NET)).rejects.toThrow("must be https://");
  });

  test("an untrusted certificate is a permanent TLS failure", async () => {
    const untrusted: TokenNet = { netguard: NET.netguard, trust: [] };
    const e = await failure(CLIENT, untrusted);
    expect(e.permanent).toBe(true);
    expect(e.reason).toContain("cannot reach token endpoint token.test");
  });
});
