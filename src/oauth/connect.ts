// The loopback connect helper (RFC 8252 with PKCE, RFC 7636): a one-shot HTTP listener on
// 127.0.0.1, the authorization URL opened in the user's browser, the callback's `state` checked,
// and the code exchanged at the token endpoint. The listener answers exactly one callback and
// closes; the browser's page never shows a token.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { type AddressInfo } from "node:net";
import { AgentVaultError } from "../shared/errors.ts";
import { type TokenClient, type TokenNet, type TokenResponse, tokenNetFromEnv, tokenRequest } from "./token-client.ts";

export interface AuthorizeRequest {
  readonly client: TokenClient;
  readonly authorization_url: string;
  readonly scopes?: string | undefined;
  readonly extra?: Readonly<Record<string, string>>;
  /** 0 or undefined: a free port. */
  readonly port?: number | undefined;
  readonly timeoutMs: number;
  /** Called with the URL to open and the redirect URI once the listener is up. */
  readonly onReady: (authorizationUrl: string, redirectUri: string) => void;
  readonly net?: TokenNet;
  /** Aborting stops waiting (the TUI's esc); nothing is stored. */
  readonly signal?: AbortSignal | undefined;
}

const base64url = (bytes: Buffer) => bytes.toString("base64url");

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = base64url(randomBytes(32));
  return { verifier, challenge: base64url(createHash("sha256").update(verifier).digest()) };
}

function page(title: string, text: string): string {
  const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><meta charset="utf-8"><title>agent-vault: ${escape(title)}</title><body style="font-family:system-ui;margin:3em"><h1>${escape(title)}</h1><p>${escape(text)}</p></body>\n`;
}

function fail(message: string, hint?: string): AgentVaultError {
  return new AgentVaultError("oauth_connect_failed", message, hint ? { hint } : undefined);
}

/** Runs the whole authorization: listener, URL, callback, exchange. Resolves with the tokens. */
export async function authorizeWithLoopback(request: AuthorizeRequest): Promise<TokenResponse> {
  const { verifier, challenge } = pkcePair();
  const state = base64url(randomBytes(16));
  let settle: { resolve: (t: TokenResponse) => void; reject: (e: unknown) => void } | null = null;
  const outcome = new Promise<TokenResponse>((resolve, reject) => (settle = { resolve, reject }));
  let answered = false;
  let redirectUri = "";

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const reply = (status: number, title: string, text: string) => {
      res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", connection: "close" });
      res.end(page(title, text));
    };
    if (url.pathname !== "/callback") return reply(404, "Not found", "This listener only answers the OAuth callback.");
    if (answered) return reply(409, "Already answered", "This connect attempt has finished; you can close this tab.");
    answered = true;
    const params = url.searchParams;
    if (params.get("state") !== state) {
      reply(400, "State mismatch", "The callback did not come from the authorization this terminal started. Nothing was stored.");
      return settle!.reject(fail("the callback's state does not match the one sent (a forged or stale redirect); nothing was stored", "run the connect command again"));
    }
    const error = params.get("error");
    if (error !== null) {
      const description = params.get("error_description");
      const reason = `${error}${description ? ` (${description})` : ""}`.replace(/[\x00-\x1f\x7f]/g, " ").slice(0, 300);
      reply(400, "Authorization refused", `The provider said: ${reason}. Nothing was stored.`);
      const denied = error === "access_denied";
      return settle!.reject(fail(denied ? `authorization was denied: ${reason}` : `the provider refused the authorization: ${reason}`, denied ? "run the command again and allow access" : undefined));
    }
    const code = params.get("code");
    if (!code) {
      reply(400, "No code", "The callback carried no authorization code. Nothing was stored.");
      return settle!.reject(fail("the callback carried neither a code nor an error"));
    }
    const params2: Record<string, string> = { grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: verifier };
    tokenRequest(request.client, params2, request.net ?? tokenNetFromEnv()).then(
      (tokens) => {
        reply(200, "Connected", "agent-vault has the tokens. You can close this tab and return to the terminal.");
        settle!.resolve(tokens);
      },
      (exchangeError: unknown) => {
        reply(502, "Exchange failed", "The provider refused to exchange the code for tokens. See the terminal. Nothing was stored.");
        const reason = exchangeError instanceof AgentVaultError ? exchangeError.message : String(exchangeError);
        settle!.reject(fail(`the provider refused the code exchange: ${reason}`));
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        error.code === "EADDRINUSE"
          ? fail(`port ${request.port} on 127.0.0.1 is already in use`, "choose another with --port, or leave --port out to use a free one")
          : fail(`cannot listen on 127.0.0.1:${request.port ?? 0}: ${error.code ?? error.message}`),
      );
    });
    server.listen(request.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  redirectUri = `http://127.0.0.1:${port}/callback`;

  const authorization = new URL(request.authorization_url);
  const query = authorization.searchParams;
  query.set("response_type", "code");
  if (request.client.client_id) query.set("client_id", request.client.client_id);
  query.set("redirect_uri", redirectUri);
  if (request.scopes) query.set("scope", request.scopes);
  query.set("state", state);
  query.set("code_challenge", challenge);
  query.set("code_challenge_method", "S256");
  for (const [name, value] of Object.entries(request.extra ?? {})) query.set(name, value);

  const timer = setTimeout(() => {
    answered = true;
    settle!.reject(fail(`no callback arrived within ${Math.round(request.timeoutMs / 1000)} s; nothing was stored`, "run the command again, or raise --timeout"));
  }, request.timeoutMs);
  const onAbort = () => {
    answered = true;
    settle!.reject(new AgentVaultError("cancelled", "the connect was cancelled; nothing was stored"));
  };
  if (request.signal?.aborted) onAbort();
  request.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    request.onReady(authorization.toString(), redirectUri);
    return await outcome;
  } finally {
    clearTimeout(timer);
    request.signal?.removeEventListener("abort", onAbort);
    // The answer page is on its way (`connection: close`); stragglers are cut after a second.
    server.close();
    setTimeout(() => server.closeAllConnections?.(), 1000).unref();
  }
}

/** Opens a URL in the desktop's browser; false when there is no opener to run. */
export function openBrowser(url: string): Promise<boolean> {
  const command = process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
  return new Promise((resolve) => {
    try {
      const child = spawn(command, [url], { stdio: "ignore", detached: true });
      child.once("error", () => resolve(false));
      child.once("spawn", () => {
        child.unref();
        resolve(true);
      });
    } catch {
      resolve(false);
    }
  });
}
