// A real OAuth 2.0 authorization server (oidc-provider, run under node by test/support/oauth-server.mjs)
// for end-to-end tests, plus small client helpers. The server's issuer is https://auth.test:<port>;
// tests reach it by connecting to 127.0.0.1:<port> with SNI "auth.test" and trusting `caFile`.
import { writeFileSync } from "node:fs";
import https from "node:https";
import { createCertificateAuthority, LeafCertificates } from "../../src/proxy/certs.ts";
import { spawnLive, waitUntil } from "./process.ts";

export const OAUTH_HOST = "auth.test";

export const OAUTH_CLIENTS = {
  public: { clientId: "public-cli" },
  post: { clientId: "post-cli", clientSecret: "post-secret-1234567890abcdefghijklmnop" },
  basic: { clientId: "basic-cli", clientSecret: "basic-secret-1234567890abcdefghijklmno" },
} as const;

export interface OAuthStats {
  readonly codeGrants: number;
  readonly refreshGrants: number;
  /** Errors the provider itself returned from /token (injected failures are not listed). */
  readonly tokenErrors: { error: string; description: string; detail?: string }[];
  /** Every POST /token that reached the server, injected failures included. */
  readonly tokenRequests: number;
  readonly injectedFailures: number;
}

export interface TokenCheck {
  readonly active: boolean;
  readonly client_id?: string;
  readonly exp?: number;
  readonly scope?: string;
  readonly sub?: string;
}

export interface OAuthServer {
  readonly port: number;
  readonly admin: number;
  readonly caFile: string;
  /** The test CA as PEM (the same content as caFile). */
  readonly ca: string;
  /** https://auth.test:<port> */
  readonly issuer: string;
  /** `${issuer}/auth` */
  readonly authorizationEndpoint: string;
  /** `${issuer}/token` */
  readonly tokenEndpoint: string;
  stats(): Promise<OAuthStats>;
  setTtl(seconds: number): Promise<void>;
  check(token: string): Promise<TokenCheck>;
  revokeRefresh(): Promise<void>;
  failNext(status: number, count?: number): Promise<void>;
  delay(ms: number): Promise<void>;
  close(): Promise<void>;
}

const SERVER_SCRIPT = `${import.meta.dir}/oauth-server.mjs`;

export async function startOAuthServer(dir: string): Promise<OAuthServer> {
  const authority = createCertificateAuthority();
  const leaves = new LeafCertificates(authority);
  // LeafCertificates keeps its leaf key private (TypeScript-only privacy); tests need it as a file.
  const leafKeyPem = (leaves as unknown as { leafKeyPem?: unknown }).leafKeyPem;
  if (typeof leafKeyPem !== "string") throw new Error("LeafCertificates no longer exposes leafKeyPem; update test/support/oauth.ts");
  const caFile = `${dir}/oauth-ca.pem`;
  const keyFile = `${dir}/oauth-key.pem`;
  const certFile = `${dir}/oauth-cert.pem`;
  writeFileSync(caFile, authority.certPem);
  writeFileSync(keyFile, leafKeyPem, { mode: 0o600 });
  writeFileSync(certFile, leaves.mint(OAUTH_HOST));

  const live = spawnLive(["node", SERVER_SCRIPT], { ...(process.env as Record<string, string>), OAUTH_TLS_KEY: keyFile, OAUTH_TLS_CERT: certFile, OAUTH_EXIT_ON_STDIN_EOF: "1" }, "pipe");
  let ready: { port: number; admin: number };
  try {
    ready = await waitUntil(
      "the OAuth server's ready line",
      () => {
        if (live.proc.exitCode !== null) throw new Error(`oauth-server exited with ${live.proc.exitCode}: ${live.stderr}`);
        const line = live.stdout.split("\n")[0];
        return live.stdout.includes("\n") && line ? (JSON.parse(line) as { port: number; admin: number }) : null;
      },
      15_000,
    );
  } catch (error) {
    live.proc.kill();
    throw error;
  }

  const adminUrl = `http://127.0.0.1:${ready.admin}`;
  const adminCall = async <T>(method: "GET" | "POST", path: string): Promise<T> => {
    const res = await fetch(`${adminUrl}${path}`, { method });
    if (!res.ok) throw new Error(`oauth admin ${method} ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const issuer = `https://${OAUTH_HOST}:${ready.port}`;
  return {
    port: ready.port,
    admin: ready.admin,
    caFile,
    ca: authority.certPem,
    issuer,
    authorizationEndpoint: `${issuer}/auth`,
    tokenEndpoint: `${issuer}/token`,
    stats: () => adminCall<OAuthStats>("GET", "/stats"),
    setTtl: async (seconds) => void (await adminCall("POST", `/ttl?seconds=${seconds}`)),
    check: (token) => adminCall<TokenCheck>("GET", `/check?token=${encodeURIComponent(token)}`),
    revokeRefresh: async () => void (await adminCall("POST", "/revoke-refresh")),
    failNext: async (status, count = 1) => void (await adminCall("POST", `/fail-next?status=${status}&count=${count}`)),
    delay: async (ms) => void (await adminCall("POST", `/delay?ms=${ms}`)),
    close: async () => {
      if (live.proc.exitCode === null) {
        live.proc.kill("SIGTERM");
        await live.proc.exited;
      }
    },
  };
}

// --- client helpers ---------------------------------------------------------------------------

export interface AuthResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/**
 * One HTTPS request to the auth server: connects to 127.0.0.1:<port>, SNI and Host auth.test:<port>,
 * trusting `ca` (or, without it, not verifying the certificate). Never follows redirects.
 */
export function authRequest(options: { port: number; ca?: string; method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<AuthResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port: options.port,
        servername: OAUTH_HOST,
        method: options.method ?? "GET",
        path: options.path,
        headers: { host: `${OAUTH_HOST}:${options.port}`, ...options.headers },
        ...(options.ca ? { ca: options.ca } : { rejectUnauthorized: false }),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** POST application/x-www-form-urlencoded to /token; `basic` sends client_secret_basic credentials. */
export async function tokenRequest(
  server: Pick<OAuthServer, "port" | "ca">,
  params: Record<string, string>,
  basic?: { clientId: string; clientSecret: string },
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
  if (basic) {
    const encode = (s: string) => encodeURIComponent(s); // RFC 6749 §2.3.1: form-encode, then base64
    headers.authorization = `Basic ${Buffer.from(`${encode(basic.clientId)}:${encode(basic.clientSecret)}`).toString("base64")}`;
  }
  const res = await authRequest({ port: server.port, ca: server.ca, method: "POST", path: "/token", headers, body: new URLSearchParams(params).toString() });
  return { status: res.status, json: JSON.parse(res.body) as Record<string, unknown> };
}

export { pkcePair } from "../../src/oauth/connect.ts";

export function authorizationUrl(
  server: Pick<OAuthServer, "authorizationEndpoint">,
  params: { clientId: string; redirectUri: string; challenge: string; state: string; scope?: string; extra?: Record<string, string> },
): string {
  const url = new URL(server.authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: params.clientId,
    redirect_uri: params.redirectUri,
    scope: params.scope ?? "openid offline_access read",
    state: params.state,
    code_challenge: params.challenge,
    code_challenge_method: "S256",
    ...params.extra,
  }).toString();
  return url.href;
}
