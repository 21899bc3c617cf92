// The token endpoint: code exchange and refresh (RFC 6749 sections 4.1.3 and 6). Requests go out
// the way the proxy's do: the host is resolved and checked by netguard (AGENT_VAULT_CONNECT_TO and
// AGENT_VAULT_NETWORK_ALLOWLIST apply), and TLS is verified against the system roots plus
// AGENT_VAULT_UPSTREAM_CA. Errors carry the provider's `error` and `error_description`, never a
// token, and say whether trying again could help.
import { type Socket } from "node:net";
import { headerValue, requestHead, ResponseParser, type ResponseHead } from "../net/http1.ts";
import { UpstreamPool } from "../net/pool.ts";
import { upstreamTrust } from "../net/trust.ts";
import { type NetguardOptions, netguardOptionsFromEnv, resolveDial } from "../net/netguard.ts";
import { AgentVaultError } from "../shared/errors.ts";
import { type TokenAuthMethod } from "../vault/oauth-record.ts";

const TIMEOUT_MS = 20_000;
const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface TokenNet {
  readonly netguard: NetguardOptions;
  readonly trust: readonly string[];
}

let fromEnv: TokenNet | null = null;

/** The network settings of this process, read once. */
export function tokenNetFromEnv(): TokenNet {
  if (fromEnv) return fromEnv;
  fromEnv = { netguard: netguardOptionsFromEnv(), trust: upstreamTrust() };
  return fromEnv;
}

export interface TokenClient {
  readonly token_url: string;
  readonly client_id?: string | undefined;
  readonly client_secret?: string | undefined;
  readonly token_auth_method: TokenAuthMethod;
}

export interface TokenResponse {
  readonly access_token: string;
  readonly refresh_token?: string | undefined;
  readonly expires_in?: number | undefined;
  readonly scope?: string | undefined;
}

/** A refused or failed token request. `permanent`: the provider said no (a 4xx other than 408/429). */
export class TokenEndpointError extends AgentVaultError {
  readonly permanent: boolean;
  /** The provider's reason, e.g. `invalid_grant: refresh token expired`; safe to show and store. */
  readonly reason: string;

  /** The provider answered (its verdict on the grant), rather than being unreachable or unverifiable. */
  readonly isAnswer: boolean;

  constructor(reason: string, permanent: boolean, isAnswer = true) {
    super("oauth_refresh_failed", reason);
    this.reason = reason;
    this.permanent = permanent;
    this.isAnswer = isAnswer;
  }
}

/** Checks a token URL before any use: absolute https, no credentials or fragment in it. */
export function checkTokenUrl(text: string, what = "the token URL"): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AgentVaultError("invalid_argument", `${what} "${text.slice(0, 200)}" is not a URL`);
  }
  if (url.protocol !== "https:") throw new AgentVaultError("invalid_argument", `${what} must be https:// (got ${url.protocol.replace(":", "")})`);
  if (url.username || url.password) throw new AgentVaultError("invalid_argument", `${what} must not contain a user name or password`);
  if (url.hash) throw new AgentVaultError("invalid_argument", `${what} must not contain a #fragment`);
  return url;
}

/** Printable text from a provider, without control characters, at most `max` characters. */
function clean(text: string, max = 300): string {
  const flat = text.replace(/[\x00-\x1f\x7f]+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Posts a form to the token endpoint and returns the parsed tokens, or throws TokenEndpointError. */
export async function tokenRequest(client: TokenClient, params: Readonly<Record<string, string>>, net: TokenNet = tokenNetFromEnv()): Promise<TokenResponse> {
  const url = checkTokenUrl(client.token_url);
  const form = new URLSearchParams(params);
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    // GitHub answers form-encoded unless asked for JSON.
    accept: "application/json",
    "user-agent": "agent-vault",
  };
  if (client.token_auth_method === "client_secret_basic") {
    if (!client.client_id || !client.client_secret) throw new AgentVaultError("invalid_argument", "client_secret_basic needs a client id and a client secret");
    // RFC 6749 section 2.3.1: both parts are form-encoded before they are joined.
    const encode = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
    headers.authorization = `Basic ${Buffer.from(`${encode(client.client_id)}:${encode(client.client_secret)}`).toString("base64")}`;
  } else {
    if (client.client_id) form.set("client_id", client.client_id);
    if (client.token_auth_method === "client_secret_post") {
      if (!client.client_secret) throw new AgentVaultError("invalid_argument", "client_secret_post needs a client secret");
      form.set("client_secret", client.client_secret);
    }
  }
  const answer = await post(url, form.toString(), headers, net);
  try {
    return parseTokenAnswer(answer.head, answer.body, url.host);
  } catch (error) {
    // The reason reaches the agent (a 502 oauth_refresh_failed) and the request log: a provider's
    // text that quotes what was sent (a refresh token, a code, the client secret) is not passed on.
    const sent = [params.refresh_token, params.code, params.code_verifier, client.client_secret].filter((v): v is string => typeof v === "string" && v.length >= PIECE);
    if (error instanceof TokenEndpointError && sent.some((v) => quotes(error.reason, v))) {
      throw new TokenEndpointError(`${url.host} refused, quoting what was sent (its reason is not shown: HTTP ${answer.head.status})`, error.permanent);
    }
    throw error;
  }
}

/** The shortest piece of a sent secret that counts as quoting it. */
const PIECE = 8;

/** Whether `text` holds any run of PIECE characters of `secret` (a provider's echo may be cut short). */
function quotes(text: string, secret: string): boolean {
  for (let i = 0; i + PIECE <= secret.length; i++) if (text.includes(secret.slice(i, i + PIECE))) return true;
  return false;
}

function parseTokenAnswer(head: ResponseHead, body: Buffer, host: string): TokenResponse {
  const contentType = headerValue(head.headers, "content-type") ?? "";
  const text = body.toString("utf8");
  let fields: Record<string, unknown> | null = null;
  try {
    if (/json/i.test(contentType) || /^\s*\{/.test(text)) {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) fields = parsed as Record<string, unknown>;
    } else if (/x-www-form-urlencoded/i.test(contentType)) {
      fields = Object.fromEntries(new URLSearchParams(text));
    }
  } catch {
    fields = null;
  }
  const status = head.status;
  const transient = status >= 500 || status === 408 || status === 429;
  // Some providers (GitHub) answer 200 with an error object.
  if (fields && typeof fields.error === "string") {
    const description = typeof fields.error_description === "string" ? `: ${fields.error_description}` : "";
    throw new TokenEndpointError(clean(`${fields.error}${description} (HTTP ${status} from ${host})`), !transient);
  }
  if (status < 200 || status >= 300) {
    throw new TokenEndpointError(clean(`HTTP ${status} ${head.reason} from ${host}`), !transient);
  }
  if (!fields || typeof fields.access_token !== "string" || fields.access_token === "") {
    throw new TokenEndpointError(`${host} answered without an access_token`, true);
  }
  const expires = fields.expires_in === undefined ? undefined : Number(fields.expires_in);
  return {
    access_token: fields.access_token,
    refresh_token: typeof fields.refresh_token === "string" && fields.refresh_token !== "" ? fields.refresh_token : undefined,
    expires_in: expires !== undefined && Number.isFinite(expires) && expires > 0 ? Math.floor(expires) : undefined,
    scope: typeof fields.scope === "string" ? fields.scope : undefined,
  };
}

/** One POST on a fresh connection, `Connection: close`, with an overall timeout. */
async function post(url: URL, body: string, headers: Record<string, string>, net: TokenNet): Promise<{ head: ResponseHead; body: Buffer }> {
  const port = Number(url.port) || 443;
  let dial;
  try {
    dial = await resolveDial(url.hostname, port, net.netguard);
  } catch (error) {
    // forbidden_address is permanent; an unresolvable host may be a network blip.
    const code = error instanceof AgentVaultError ? error.code : "upstream_error";
    throw new TokenEndpointError(`token endpoint ${url.host}: ${(error as Error).message}`, code === "forbidden_address", false);
  }
  const payload = Buffer.from(body);
  // Written by the same serializer the proxy uses: a value that could split the head throws here.
  const head = requestHead("POST", `${url.pathname}${url.search}`, [["host", url.host], ...Object.entries(headers), ["content-length", String(payload.length)], ["connection", "close"]]);
  let socket: Socket;
  try {
    // A fresh verified connection from the proxy's own dialer: SNI and the certificate check use
    // the token URL's host name, never the address it was dialled at (AGENT_VAULT_CONNECT_TO).
    ({ socket } = await new UpstreamPool(net.trust).acquire({ scheme: "https", host: url.hostname, dial }, true));
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    // Only a certificate that does not verify is permanent; a reset during the handshake is not.
    const tlsFailure = /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/i.test(String(e.code ?? ""));
    throw new TokenEndpointError(`cannot reach token endpoint ${url.host}: ${clean(String(e.code ?? e.message), 120)}`, tlsFailure, false);
  }
  return new Promise((resolve, reject) => {
    let responseHead: ResponseHead | null = null;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // No more events from bytes already read: nothing is kept after a refusal.
      parser.pause();
      socket.destroy();
      reject(new TokenEndpointError(`token endpoint ${url.host}: ${reason}`, false, false));
    };
    const timer = setTimeout(() => fail(`no answer within ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS);
    const parser = new ResponseParser({
      head: (h) => (responseHead = h),
      body: (bytes) => {
        if (settled) return;
        size += bytes.length;
        if (size > MAX_RESPONSE_BYTES) return fail("the answer is larger than 1 MiB");
        chunks.push(Buffer.from(bytes));
      },
      end: () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve({ head: responseHead!, body: Buffer.concat(chunks) });
      },
    });
    parser.expect("POST");
    socket.on("data", (data: Buffer) => {
      const error = parser.feed(data);
      if (error) fail(`malformed answer (${error.message})`);
    });
    socket.on("end", () => {
      const error = parser.eof();
      if (error) fail(error.message);
    });
    socket.on("error", (error: NodeJS.ErrnoException) => fail(String(error.code ?? error.message)));
    socket.on("close", () => fail("the connection closed before the answer was complete"));
    socket.write(Buffer.concat([head, payload]));
  });
}
