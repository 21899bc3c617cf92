// Plays the user's browser through oidc-provider's dev interactions (login, then consent) for an
// authorization URL on https://auth.test:<port>: a cookie jar, redirects followed, forms submitted.
// consent() finally delivers the redirect to the CLI's loopback listener (http://127.0.0.1:<port>/...);
// authorizationCode() stops before that and hands back the code.
import { authRequest, OAUTH_HOST } from "./oauth.ts";

export interface BrowserOptions {
  /** The auth server's port (auth.test:<port> is reached at 127.0.0.1:<port>). */
  readonly oauthPort: number;
  /** PEM of the CA to trust; without it the server certificate is not verified. */
  readonly ca?: string;
  /** Abort at the consent prompt (the callback then carries error=access_denied). */
  readonly deny?: boolean;
  /** Any login name is accepted; default "alice". */
  readonly login?: string;
}

export interface ConsentResult {
  readonly callbackUrl: string;
  readonly callbackStatus: number;
  readonly callbackBody: string;
}

export interface AuthorizationCodeResult {
  readonly code: string;
  readonly state: string | null;
  /** RFC 9207 issuer parameter, which oidc-provider always adds. */
  readonly iss: string | null;
  readonly callbackUrl: string;
}

export async function consent(authorizationUrl: string, options: BrowserOptions): Promise<ConsentResult> {
  const callbackUrl = await driveToCallback(authorizationUrl, options);
  const res = await fetch(callbackUrl, { redirect: "manual" });
  return { callbackUrl, callbackStatus: res.status, callbackBody: await res.text() };
}

/** Like consent() but does not deliver the callback; throws if the redirect carries an error. */
export async function authorizationCode(authorizationUrl: string, options: BrowserOptions): Promise<AuthorizationCodeResult> {
  const callbackUrl = await driveToCallback(authorizationUrl, options);
  const params = new URL(callbackUrl).searchParams;
  const code = params.get("code");
  if (!code) throw new Error(`no code in callback ${callbackUrl}`);
  return { code, state: params.get("state"), iss: params.get("iss"), callbackUrl };
}

// --- internals --------------------------------------------------------------------------------

interface Cookie {
  name: string;
  value: string;
  path: string;
}

class CookieJar {
  private readonly cookies = new Map<string, Cookie>();

  store(setCookie: string | string[] | undefined): void {
    for (const line of [setCookie ?? []].flat()) {
      const [pair = "", ...attributes] = line.split(";").map((s) => s.trim());
      const eq = pair.indexOf("=");
      if (eq <= 0) continue;
      const cookie: Cookie = { name: pair.slice(0, eq), value: pair.slice(eq + 1), path: "/" };
      let expired = false;
      for (const attribute of attributes) {
        const [k = "", v = ""] = attribute.split("=");
        const lower = k.toLowerCase();
        if (lower === "path" && v) cookie.path = v;
        if (lower === "max-age" && Number(v) <= 0) expired = true;
        if (lower === "expires" && Date.parse(v) <= Date.now()) expired = true;
      }
      const key = `${cookie.name}\0${cookie.path}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, cookie);
    }
  }

  header(path: string): string | undefined {
    const matching = [...this.cookies.values()].filter((c) => path === c.path || path.startsWith(c.path.endsWith("/") ? c.path : `${c.path}/`));
    return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join("; ") : undefined;
  }
}

function isAuthServer(url: URL, port: number): boolean {
  return url.protocol === "https:" && url.hostname === OAUTH_HOST && Number(url.port) === port;
}

function formOf(html: string): { action: string; prompt: string | undefined } | undefined {
  const action = /<form[^>]*\saction="([^"]+)"/i.exec(html)?.[1];
  if (!action) return undefined;
  const prompt = /<input[^>]*name="prompt"[^>]*value="([^"]+)"/i.exec(html)?.[1];
  return { action: action.replaceAll("&amp;", "&"), prompt };
}

async function driveToCallback(authorizationUrl: string, options: BrowserOptions): Promise<string> {
  const jar = new CookieJar();
  let url = new URL(authorizationUrl);
  let method = "GET";
  let body: string | undefined;
  for (let step = 0; step < 20; step++) {
    if (!isAuthServer(url, options.oauthPort)) {
      if (url.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) return url.href;
      throw new Error(`browser: unexpected redirect to ${url.href}`);
    }
    const headers: Record<string, string> = { accept: "text/html" };
    const cookie = jar.header(url.pathname);
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
    const res = await authRequest({ port: options.oauthPort, ca: options.ca, method, path: `${url.pathname}${url.search}`, headers, body });
    jar.store(res.headers["set-cookie"]);

    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.location;
      if (typeof location !== "string") throw new Error(`browser: ${res.status} without location at ${url.href}`);
      url = new URL(location, url);
      method = "GET";
      body = undefined;
      continue;
    }
    const form = res.status === 200 ? formOf(res.body) : undefined;
    if (!form) throw new Error(`browser: HTTP ${res.status} at ${method} ${url.href}: ${res.body.slice(0, 2000)}`);
    const action = new URL(form.action, url);
    if (form.prompt === "login") {
      url = action;
      method = "POST";
      body = new URLSearchParams({ prompt: "login", login: options.login ?? "alice", password: "x" }).toString();
    } else if (form.prompt === "consent" && options.deny) {
      url = new URL(`${action.pathname.replace(/\/$/, "")}/abort`, action);
      method = "GET";
      body = undefined;
    } else if (form.prompt === "consent") {
      url = action;
      method = "POST";
      body = new URLSearchParams({ prompt: "consent" }).toString();
    } else {
      throw new Error(`browser: unknown form (prompt=${form.prompt}) at ${url.href}`);
    }
  }
  throw new Error("browser: too many steps without reaching the callback");
}
