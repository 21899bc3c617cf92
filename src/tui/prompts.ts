// Every question the TUI asks on its bottom line, as data: what it shows, whether what is typed is
// hidden, what it refuses, and what it does on submit or cancel. The router draws whichever is
// open (components/PromptLine.tsx); screens only open them. Values typed here go from the input
// straight to the vault API: none is kept in React state or shown.
import { openBrowser } from "../oauth/connect.ts";
import { agentWrittenUrls, connectOAuth, pasteOAuth, resolveConfig, shouldAskClientSecret, type StatedUrls } from "../oauth/credential.ts";
import { displaySafe } from "../shared/text.ts";
import { deleteCredentials, setCredentials } from "../vault/credentials.ts";
import { type Proposal } from "../vault/proposal.schema.ts";
import { approveProposal, rejectProposal } from "../vault/proposals.ts";
import { answerHeld } from "../vault/held.ts";
import { revokeAgent } from "../vault/agents.ts";
import { revokeSession } from "../vault/sessions.ts";
import { findVault } from "../vault/vaults.ts";
import { type VaultStore } from "../vault/vault.ts";

export type Prompt =
  | { readonly kind: "filter" }
  | { readonly kind: "approve"; readonly id: number; readonly keys: readonly string[]; readonly index: number; readonly values: Readonly<Record<string, string>> }
  | { readonly kind: "approve-confirm"; readonly id: number; readonly values: Readonly<Record<string, string>> }
  | { readonly kind: "reject"; readonly id: number }
  | { readonly kind: "held-deny"; readonly vault: string; readonly id: number }
  | { readonly kind: "new-key" }
  | { readonly kind: "set-value"; readonly key: string; readonly isNew: boolean }
  | { readonly kind: "confirm-delete"; readonly key: string }
  | { readonly kind: "confirm-revoke"; readonly id: string }
  | { readonly kind: "oauth-urls"; readonly key: string; readonly urls: StatedUrls; readonly next: "connect" | "paste" }
  | { readonly kind: "oauth-client-id"; readonly key: string; readonly urls?: StatedUrls }
  | { readonly kind: "oauth-secret"; readonly key: string; readonly clientId: string | undefined; readonly urls?: StatedUrls }
  | { readonly kind: "oauth-waiting"; readonly key: string; readonly url: string }
  | { readonly kind: "paste-access"; readonly key: string; readonly urls?: StatedUrls }
  | { readonly kind: "paste-refresh"; readonly key: string; readonly access: string | undefined; readonly urls?: StatedUrls };

/** What a prompt may do: the router's actions, nothing more. */
export interface PromptContext {
  readonly store: VaultStore;
  readonly vaultName: string;
  readonly proposals: readonly Proposal[];
  /** Recorded in the proposal's audit: `tui:USER`. */
  readonly reviewer: string;
  say(text: string, isError?: boolean): void;
  /** Runs a vault action; its label on success, its error otherwise. */
  run(label: string, action: () => Promise<unknown>): void;
  open(next: Prompt): void;
  /** Back to the screen, with a message (kept as it is without one). */
  close(text?: string, isError?: boolean): void;
  current(): Prompt | null;
  setFilter(value: string): void;
  goTo(screen: number, select: string): void;
  /** Re-reads the vault now, not at the next poll. */
  refresh(): void;
  /** The OAuth connect in progress, so esc can stop it. */
  setConnecting(controller: AbortController | null): void;
  abortConnect(): void;
}

type Of<K extends Prompt["kind"]> = Extract<Prompt, { kind: K }>;

interface TextPrompt<P> {
  readonly type: "text" | "hidden";
  label(p: P): string;
  /** A refusal keeps the prompt open and says why. */
  validate?(value: string, p: P): string | null;
  submit(value: string, p: P, ctx: PromptContext): void;
  cancelled(p: P): string;
}

interface ConfirmPrompt<P> {
  readonly type: "confirm";
  readonly tone: "yellow" | "red";
  label(p: P): string;
  /** `y` (or `Y`); any other key is no. */
  yes(p: P, ctx: PromptContext): void;
  no(p: P): string;
}

interface WaitPrompt<P> {
  readonly type: "wait";
  label(p: P): string;
  /** Untrusted text under the label (a provider's URL), escaped where drawn. */
  detail(p: P): string;
  /** esc */
  stop(p: P, ctx: PromptContext): void;
}

export type PromptSpec<P> = TextPrompt<P> | ConfirmPrompt<P> | WaitPrompt<P>;

export const PROMPTS: { readonly [K in Prompt["kind"]]: PromptSpec<Of<K>> } = {
  filter: {
    type: "text",
    label: () => "/",
    submit: (value, _p, ctx) => {
      ctx.setFilter(value);
      ctx.close();
    },
    cancelled: () => "filter cleared",
  },
  approve: {
    type: "hidden",
    label: (p) => `Value for ${p.keys[p.index]} (hidden, enter to go on, esc cancels):`,
    validate: (value, p) => (value ? null : `${p.keys[p.index]} needs a value`),
    submit: (value, p, ctx) => {
      const values = { ...p.values, [p.keys[p.index]!]: value };
      ctx.open(p.index + 1 < p.keys.length ? { ...p, index: p.index + 1, values } : { kind: "approve-confirm", id: p.id, values });
    },
    cancelled: (p) => `proposal #${p.id} was not applied`,
  },
  "approve-confirm": {
    type: "confirm",
    tone: "yellow",
    label: (p) => `Apply proposal #${p.id}? y to confirm, any other key cancels`,
    yes: (p, ctx) => {
      ctx.close();
      const oauthSlots =
        ctx.proposals
          .find((x) => x.id === p.id)
          ?.credentials.filter((c) => c.action === "set" && c.type === "oauth")
          .map((c) => c.key) ?? [];
      if (oauthSlots.length === 0) return ctx.run(`applied proposal #${p.id}`, () => approveProposal(ctx.store, ctx.vaultName, p.id, p.values, ctx.reviewer));
      // OAuth slots are completed next, on the Credentials screen, with the first one selected.
      const what = oauthSlots.length > 1 ? "are OAuth credentials" : "is an OAuth credential";
      ctx.run(`applied proposal #${p.id}; ${oauthSlots.join(", ")} ${what}: press c to connect or p to paste tokens`, async () => {
        await approveProposal(ctx.store, ctx.vaultName, p.id, p.values, ctx.reviewer);
        ctx.goTo(1, oauthSlots[0]!);
      });
    },
    no: (p) => `proposal #${p.id} was not applied`,
  },
  reject: {
    type: "text",
    label: (p) => `Reason for rejecting #${p.id} (enter):`,
    submit: (reason, p, ctx) => {
      ctx.close();
      ctx.run(`rejected proposal #${p.id}`, () => rejectProposal(ctx.store, ctx.vaultName, p.id, reason, ctx.reviewer));
    },
    cancelled: () => "not rejected",
  },
  "held-deny": {
    type: "text",
    label: (p) => `Reason for denying held request #${p.id} (enter; may be empty; the agent reads it):`,
    submit: (reason, p, ctx) => {
      ctx.close();
      ctx.run(`denied held request #${p.id}`, () => answerHeld(ctx.store, p.vault, p.id, { allow: false, reason }, ctx.reviewer));
    },
    cancelled: (p) => `held request #${p.id} is still waiting`,
  },
  "new-key": {
    type: "text",
    label: () => "New credential key (UPPER_SNAKE_CASE):",
    submit: (key, _p, ctx) => ctx.open({ kind: "set-value", key: key.trim(), isNew: true }),
    cancelled: () => "cancelled",
  },
  "set-value": {
    type: "hidden",
    label: (p) => `Value for ${p.key} (hidden):`,
    submit: (value, p, ctx) => {
      ctx.close();
      ctx.run(`${p.isNew ? "stored" : "updated"} ${p.key}`, () => setCredentials(ctx.store, ctx.vaultName, [{ key: p.key, value }]));
    },
    cancelled: () => "cancelled",
  },
  "confirm-delete": {
    type: "confirm",
    tone: "red",
    label: (p) => `Delete ${p.key}? y to confirm`,
    yes: (p, ctx) => {
      ctx.close();
      ctx.run(`deleted ${p.key}`, () => deleteCredentials(ctx.store, ctx.vaultName, [p.key]));
    },
    no: (p) => `${p.key} was not deleted`,
  },
  "confirm-revoke": {
    type: "confirm",
    tone: "red",
    label: (p) => `Revoke ${p.id.startsWith("agent:") ? `agent ${p.id.slice(6)}` : `session ${p.id}`}? y to confirm`,
    yes: (p, ctx) => {
      ctx.close();
      if (p.id.startsWith("agent:")) return ctx.run(`revoked agent ${p.id.slice(6)}`, () => revokeAgent(ctx.store, ctx.vaultName, p.id.slice(6)));
      ctx.run(`revoked session ${p.id}`, () => revokeSession(ctx.store, ctx.vaultName, p.id));
    },
    no: (p) => `session ${p.id} was not revoked`,
  },
  "oauth-urls": {
    type: "confirm",
    tone: "red",
    // The URLs are the agent's text: escaped here, as the label is drawn as it is.
    label: (p) =>
      `${p.key}: the agent's proposal chose where its tokens${p.urls.authorizationUrl ? " and your browser" : ""} go, not a known provider's: ${displaySafe(
        [p.urls.tokenUrl ? `tokens to ${p.urls.tokenUrl}` : "", p.urls.authorizationUrl ? `sign-in at ${p.urls.authorizationUrl}` : ""].filter(Boolean).join(", "),
      )}. y to use them, any other key cancels`,
    yes: (p, ctx) => (p.next === "connect" ? connectStep(ctx, p.key, undefined, undefined, false, p.urls) : ctx.open({ kind: "paste-access", key: p.key, urls: p.urls })),
    no: (p) => `${p.key} was not ${p.next === "connect" ? "connected" : "pasted"}`,
  },
  "oauth-client-id": {
    type: "text",
    label: (p) => `Client id for ${p.key} (enter):`,
    submit: (id, p, ctx) => {
      if (id.trim() === "") return ctx.close("not connected: a client id is needed");
      connectStep(ctx, p.key, id.trim(), undefined, false, p.urls);
    },
    cancelled: () => "not connected",
  },
  "oauth-secret": {
    type: "hidden",
    label: (p) => `Client secret for ${p.key} (hidden; enter for none):`,
    submit: (secret, p, ctx) => connectStep(ctx, p.key, p.clientId, secret === "" ? undefined : secret, true, p.urls),
    cancelled: () => "not connected",
  },
  "oauth-waiting": {
    type: "wait",
    label: (p) => `Waiting for the browser to authorize ${p.key} (esc stops waiting). If no browser opened, open:`,
    detail: (p) => p.url || "…",
    stop: (_p, ctx) => ctx.abortConnect(),
  },
  "paste-access": {
    type: "hidden",
    label: (p) => `Access token for ${p.key} (hidden; enter to skip):`,
    submit: (access, p, ctx) => ctx.open({ kind: "paste-refresh", key: p.key, access: access === "" ? undefined : access, ...(p.urls ? { urls: p.urls } : {}) }),
    cancelled: () => "nothing pasted",
  },
  "paste-refresh": {
    type: "hidden",
    label: (p) => `Refresh token for ${p.key} (hidden; enter to skip):`,
    submit: (refresh, p, ctx) => {
      ctx.close();
      const refreshToken = refresh === "" ? undefined : refresh;
      ctx.say(refreshToken ? `checking the refresh token of ${p.key}…` : `storing ${p.key}…`);
      ctx.run(refreshToken ? `the refresh token works; stored ${p.key}` : `stored ${p.key} (no refresh token: paste again when it expires)`, async () => {
        const resolved = resolveConfig(ctx.store, ctx.vaultName, p.key, { ...p.urls }, { needAuthorizationUrl: false, hasNewSecret: false });
        await pasteOAuth(ctx.store, ctx.vaultName, p.key, { resolved, accessToken: p.access, refreshToken });
      });
    },
    cancelled: () => "nothing pasted",
  },
};

export function specOf<P extends Prompt>(p: P): PromptSpec<P> {
  return PROMPTS[p.kind] as PromptSpec<P>;
}

/** A prompt whose pane is that proposal's detail (what is being approved or rejected). */
export function proposalOf(p: Prompt | null): number | null {
  return p && (p.kind === "approve" || p.kind === "approve-confirm" || p.kind === "reject") ? p.id : null;
}

/**
 * Connect, one question at a time: a client id if none is known, a client secret if the method
 * or provider wants one (asked once), then the browser; the bottom line shows the URL while it waits.
 */
/** URLs an agent's proposal wrote for `key` that the user has not vouched for yet (agentWrittenUrls), or null. */
function unvouched(ctx: PromptContext, key: string, forConnect: boolean): StatedUrls | null {
  const record = findVault(ctx.store.read(), ctx.vaultName).credentials[key];
  const urls = record ? agentWrittenUrls(record) : {};
  const wanted = forConnect ? urls : { ...(urls.tokenUrl ? { tokenUrl: urls.tokenUrl } : {}) };
  return wanted.tokenUrl || wanted.authorizationUrl ? wanted : null;
}

/** Paste, first asking about URLs the agent chose (oauth-urls). */
export function pasteStep(ctx: PromptContext, key: string): void {
  const urls = unvouched(ctx, key, false);
  ctx.open(urls ? { kind: "oauth-urls", key, urls, next: "paste" } : { kind: "paste-access", key });
}

/** `urls`: what the user confirmed of the URLs the agent chose (oauth-urls); asked first when undefined. */
export function connectStep(ctx: PromptContext, key: string, clientId: string | undefined, secret: string | undefined, askedSecret: boolean, urls?: StatedUrls): void {
  if (urls === undefined) {
    const asked = unvouched(ctx, key, true);
    if (asked) return ctx.open({ kind: "oauth-urls", key, urls: asked, next: "connect" });
  }
  let resolved;
  try {
    resolved = resolveConfig(ctx.store, ctx.vaultName, key, { clientId, ...urls }, { needAuthorizationUrl: true, hasNewSecret: secret !== undefined });
  } catch (error) {
    return ctx.close((error as Error).message, true);
  }
  const vouched = urls ? { urls } : {};
  if (!resolved.config.client_id) return ctx.open({ kind: "oauth-client-id", key, ...vouched });
  if (secret === undefined && !askedSecret && shouldAskClientSecret(resolved, false)) return ctx.open({ kind: "oauth-secret", key, clientId, ...vouched });
  const controller = new AbortController();
  ctx.setConnecting(controller);
  ctx.open({ kind: "oauth-waiting", key, url: "" });
  const vaultName = ctx.vaultName;
  connectOAuth(ctx.store, vaultName, key, {
    resolved,
    clientSecret: secret,
    timeoutMs: 300_000,
    signal: controller.signal,
    onReady: (url) => {
      ctx.open({ kind: "oauth-waiting", key, url });
      void openBrowser(url);
    },
  })
    .then(
      (record) => {
        ctx.refresh();
        ctx.say(`connected ${key}${record.expires_at ? `; the access token expires ${new Date(record.expires_at).toLocaleTimeString()}` : ""}`);
      },
      (error: Error) => ctx.say(error.message, true),
    )
    .finally(() => {
      ctx.setConnecting(null);
      if (ctx.current()?.kind === "oauth-waiting") ctx.close();
    });
}
