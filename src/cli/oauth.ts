// `agent-vault oauth connect|paste|status|refresh|providers`. Secrets (client secret, pasted
// tokens) come from stdin or a masked prompt, never from arguments; stdin lines are taken in the
// order: master password (with --password-stdin), access token, refresh token, client secret.
import { type Command } from "commander";
import { connectOAuth, type ConfigInput, needsClientSecret, pasteOAuth, resolveConfig, type ResolvedConfig, shouldAskClientSecret } from "../oauth/credential.ts";
import { openBrowser } from "../oauth/connect.ts";
import { PROVIDERS } from "../oauth/providers.ts";
import { OAuthRefresher } from "../oauth/refresh.ts";
import { AgentVaultError } from "../shared/errors.ts";
import { displaySafe } from "../shared/text.ts";
import { checkCredentialKey } from "../vault/credentials.ts";
import { type CredentialRecord } from "../vault/credential.schema.ts";
import { oauthStatusView, type OAuthStatusView } from "../vault/oauth-record.ts";
import { findVault } from "../vault/vaults.ts";
import { type CommonOptions, openVault, withJsonOption, withPasswordOption, withVaultOption } from "./context.ts";
import { paint, statusStyle } from "./colour.ts";
import { formatWhen, isInteractive, printJson, printNote, printTable, promptHidden, readStdinLine, tableWidth } from "./io.ts";

interface ConfigFlags extends CommonOptions, ConfigInput {
  clientSecretStdin?: boolean;
  description?: string;
}

interface ConnectFlags extends ConfigFlags {
  browser: boolean;
  port?: string;
  timeout: string;
}

interface PasteFlags extends ConfigFlags {
  accessTokenStdin?: boolean;
  refreshTokenStdin?: boolean;
  expiresIn?: string;
}

function withConfigOptions(command: Command): Command {
  return command
    .option("--provider <name>", "preset endpoints, auth method and scopes (see `agent-vault oauth providers`)")
    .option("--token-url <url>", "the provider's token endpoint")
    .option("--client-id <id>", "the OAuth app's client id")
    .option("--client-secret-stdin", "read the client secret from stdin (public clients with PKCE need none)")
    .option("--token-auth-method <method>", "none, client_secret_post or client_secret_basic (default: the provider's, or none without a secret)")
    .option("--description <text>", "what the credential is for");
}

function parsePositive(text: string, what: string, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new AgentVaultError("invalid_argument", `${what} "${text.slice(0, 40)}" is not a whole number from 1 to ${max}`);
  return Number(text);
}

/** A client secret from stdin, or asked for on a terminal when the method (or provider) wants one. */
async function clientSecretFor(
  store: Parameters<typeof resolveConfig>[0],
  vaultName: string,
  key: string,
  flags: ConfigFlags,
  needAuthorizationUrl: boolean,
): Promise<{ resolved: ResolvedConfig; secret: string | undefined }> {
  if (flags.clientSecretStdin) {
    const secret = await readStdinLine("the client secret");
    if (secret === "") throw new AgentVaultError("invalid_argument", "the client secret on stdin is empty");
    return { resolved: resolveConfig(store, vaultName, key, flags, { needAuthorizationUrl, hasNewSecret: true }), secret };
  }
  const resolved = resolveConfig(store, vaultName, key, flags, { needAuthorizationUrl, hasNewSecret: false });
  if (!shouldAskClientSecret(resolved, flags.tokenAuthMethod !== undefined) || !isInteractive()) return { resolved, secret: undefined };
  const secret = await promptHidden(needsClientSecret(resolved.config) ? "Client secret (hidden): " : "Client secret (hidden; enter for a public client): ");
  if (secret === "") return { resolved, secret: undefined };
  return { resolved: resolveConfig(store, vaultName, key, flags, { needAuthorizationUrl, hasNewSecret: true }), secret };
}

/** `given` says who could have named an expiry: the provider's answer, or the user's --expires-in. */
function expiryText(record: CredentialRecord, given: "provider" | "paste" = "provider"): string {
  if (record.expires_at !== null) return `access token expires ${formatWhen(record.expires_at)}`;
  return given === "provider" ? "no expiry given by the provider" : "expiry unknown (pass --expires-in SECONDS if you know it)";
}

function printStatus(view: OAuthStatusView): void {
  const rows: [string, string][] = [
    ["key", view.key],
    ["status", view.status.replace("_", " ")],
    ["provider", view.provider ?? "-"],
    ["client id", view.client_id ?? "-"],
    ["token url", view.token_url ?? "-"],
    ["authorization url", view.authorization_url ?? "- (paste mode)"],
    ["scopes", view.scopes ?? "-"],
    ["token auth method", view.token_auth_method ?? "-"],
    ["expires", view.expires_at ? `${view.expires_at} (${formatWhen(view.expires_at)})` : "-"],
    ["connected", view.connected_at ? `${view.connected_at} (${formatWhen(view.connected_at)})` : "-"],
    ["last refresh", view.last_refresh ? `${view.last_refresh} (${formatWhen(view.last_refresh)})` : "-"],
    ["last error", view.last_error ? `${view.last_error}${view.last_error_at ? ` (${formatWhen(view.last_error_at)})` : ""}` : "-"],
    ["refresh token", view.has_refresh_token ? "stored" : "none"],
    ["client secret", view.has_client_secret ? "stored" : "none"],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  // Values come from a proposal (URLs, scopes) or a provider (the last error): escaped, one line each.
  // Fitted to the terminal like a table: a long URL or error is cut with "…" rather than wrapped.
  const room = Math.max(20, tableWidth() - width - 2);
  const fit = (text: string) => (text.length > room ? `${text.slice(0, room - 1)}…` : text);
  const out = process.stdout;
  out.write(rows.map(([name, value]) => `${name.padEnd(width)}  ${name === "status" ? paint(out, statusStyle(value), fit(displaySafe(value))) : fit(displaySafe(value))}`).join("\n") + "\n");
}

export function registerOAuth(program: Command): void {
  const oauth = program.command("oauth").description("OAuth credentials: connect in the browser, paste tokens, status, refresh");

  withJsonOption(
    withVaultOption(withPasswordOption(withConfigOptions(oauth.command("connect <key>").description("authorize in the browser (authorization code + PKCE, loopback redirect) and store the tokens")))),
  )
    .option("--authorization-url <url>", "the provider's authorization endpoint")
    .option("--scopes <scopes>", "space-separated scopes (default: the provider's suggestion)")
    .option("--no-browser", "print the URL to open instead of opening a browser")
    .option("--port <n>", "loopback port for the redirect (default: a free one)")
    .option("--timeout <seconds>", "how long to wait for the browser", "300")
    .action(async (keyArg: string, flags: ConnectFlags) => {
      const key = checkCredentialKey(keyArg);
      const port = flags.port === undefined ? undefined : parsePositive(flags.port, "--port", 65535);
      const timeoutMs = parsePositive(flags.timeout, "--timeout", 86_400) * 1000;
      const { store, vault } = await openVault(flags);
      const { resolved, secret } = await clientSecretFor(store, vault.name, key, flags, true);
      const record = await connectOAuth(store, vault.name, key, {
        resolved,
        clientSecret: secret,
        port,
        timeoutMs,
        description: flags.description,
        onReady: (url, redirectUri) => {
          printNote(`Waiting for the provider to redirect to ${redirectUri} (times out in ${Math.round(timeoutMs / 1000)} s; Ctrl-C cancels).`);
          if (!flags.browser) {
            printNote(`Open this URL in a browser to authorize ${key}:\n${url}`);
            return;
          }
          void openBrowser(url).then((opened) => printNote(opened ? `Opened the browser. If it did not appear, open:\n${url}` : `Could not start a browser; open this URL:\n${url}`));
        },
      });
      const view = oauthStatusView(store, findVault(store.read(), vault.name), key);
      if (flags.json) return printJson(view);
      printNote(`connected ${key} in vault "${vault.name}": ${expiryText(record)}; refresh token ${view.has_refresh_token ? "stored" : "not issued (the token cannot be renewed)"}`);
    });

  withJsonOption(withVaultOption(withPasswordOption(withConfigOptions(oauth.command("paste <key>").description("store tokens obtained elsewhere; a refresh token is checked by refreshing at once")))))
    .option("--access-token-stdin", "read the access token from stdin")
    .option("--refresh-token-stdin", "read the refresh token from stdin (after the access token, with both)")
    .option("--expires-in <seconds>", "seconds the pasted access token has left")
    .action(async (keyArg: string, flags: PasteFlags) => {
      const key = checkCredentialKey(keyArg);
      const expiresIn = flags.expiresIn === undefined ? undefined : parsePositive(flags.expiresIn, "--expires-in", 10 * 365 * 86_400);
      const { store, vault } = await openVault(flags);
      let accessToken: string | undefined;
      let refreshToken: string | undefined;
      if (flags.accessTokenStdin) accessToken = await readStdinLine("the access token");
      if (flags.refreshTokenStdin) refreshToken = await readStdinLine("the refresh token");
      if (!flags.accessTokenStdin && !flags.refreshTokenStdin) {
        if (!isInteractive())
          throw new AgentVaultError("invalid_argument", "no tokens given", { hint: "pass --access-token-stdin and/or --refresh-token-stdin with the tokens on stdin, one per line" });
        accessToken = (await promptHidden("Access token (hidden; enter to skip): ")) || undefined;
        refreshToken = (await promptHidden("Refresh token (hidden; enter to skip): ")) || undefined;
      }
      if (accessToken === "") throw new AgentVaultError("invalid_argument", "the access token on stdin is empty");
      if (refreshToken === "") throw new AgentVaultError("invalid_argument", "the refresh token on stdin is empty");
      const { resolved, secret } = refreshToken
        ? await clientSecretFor(store, vault.name, key, flags, false)
        : { resolved: resolveConfig(store, vault.name, key, flags, { needAuthorizationUrl: false, hasNewSecret: false, needTokenUrl: false }), secret: undefined };
      const record = await pasteOAuth(store, vault.name, key, { resolved, accessToken, refreshToken, clientSecret: secret, expiresIn, description: flags.description });
      const view = oauthStatusView(store, findVault(store.read(), vault.name), key);
      if (flags.json) return printJson(view);
      if (refreshToken) printNote(`the refresh token works (refreshed at ${new URL(resolved.config.token_url).host}); stored ${key} in vault "${vault.name}": ${expiryText(record)}`);
      else
        printNote(
          `stored ${key} in vault "${vault.name}": ${expiryText(record, "paste")}; no refresh token: the access token is used until it expires or is replaced (paste a new one with agent-vault oauth paste ${key})`,
        );
    });

  withJsonOption(withVaultOption(withPasswordOption(oauth.command("status [key]").description("connected or not, expiry, last refresh and last error (all OAuth credentials without KEY)")))).action(
    async (keyArg: string | undefined, options: CommonOptions) => {
      const { store, vault } = await openVault(options);
      if (keyArg !== undefined) {
        const view = oauthStatusView(store, vault, checkCredentialKey(keyArg));
        return options.json ? printJson(view) : printStatus(view);
      }
      const views = Object.keys(vault.credentials)
        .filter((k) => vault.credentials[k]!.type === "oauth")
        .sort()
        .map((k) => oauthStatusView(store, vault, k));
      if (options.json) return printJson(views);
      if (views.length === 0) return printNote(`vault "${vault.name}" has no OAuth credentials; add one with: agent-vault oauth connect KEY --provider NAME`);
      printTable(
        ["KEY", "STATUS", "PROVIDER", "EXPIRES", "LAST REFRESH", "LAST ERROR"],
        views.map((v) => [v.key, v.status.replace("_", " "), v.provider ?? "-", formatWhen(v.expires_at), formatWhen(v.last_refresh), v.last_error ?? "-"]),
        { max: 60, status: 1, cutFirst: [5] },
      );
    },
  );

  withJsonOption(withVaultOption(withPasswordOption(oauth.command("refresh <key>").description("refresh the access token now with the stored refresh token")))).action(
    async (keyArg: string, options: CommonOptions) => {
      const key = checkCredentialKey(keyArg);
      const { store, vault } = await openVault(options);
      const record = vault.credentials[key];
      if (!record) throw new AgentVaultError("credential_not_found", `no credential ${key} in vault "${vault.name}"`);
      if (record.type !== "oauth") throw new AgentVaultError("invalid_argument", `${key} is a static credential, not an OAuth one`);
      const refreshed = await new OAuthRefresher(store, { backoffMs: [500] }).refresh(vault.id, key, { force: true });
      const view = oauthStatusView(store, store.read().vaults.find((v) => v.id === vault.id)!, key);
      if (options.json) return printJson(view);
      printNote(`refreshed ${key}: ${expiryText(refreshed)}`);
    },
  );

  withJsonOption(oauth.command("providers").description("list the provider presets")).action((options: { json?: boolean }) => {
    if (options.json) return printJson(PROVIDERS);
    // The title only restates the name, and client_secret_ is implied: room for the scopes and the URL.
    printTable(
      ["PROVIDER", "TOKEN AUTH", "SCOPES", "REGISTER AN APP AT"],
      PROVIDERS.map((p) => [p.name, p.token_auth_method.replace(/^client_secret_/, ""), p.scopes || "-", p.register]),
      { max: 80 },
    );
  });
}
