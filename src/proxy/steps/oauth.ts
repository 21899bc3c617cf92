// Step 5a: keep OAuth access tokens fresh before inject reads them. A token within five minutes of
// expiry is refreshed first (one refresh per credential however many requests wait on it); a
// credential whose refresh the provider refused answers 502 oauth_refresh_failed with the reason.
import { TokenEndpointError } from "../../oauth/token-client.ts";
import { isExpired, isNearExpiry, oauthStatusOf } from "../../vault/oauth-record.ts";
import { credentialKeysOf } from "../../vault/service.schema.ts";
import { answer, type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

/** The OAuth credentials the flow's service would inject. */
export function oauthKeysOf(flow: Flow): string[] {
  const service = flow.service;
  const vault = flow.vault;
  if (!service || !vault) return [];
  return credentialKeysOf(service.auth).filter((key) => vault.credentials[key]?.type === "oauth");
}

export async function refreshOAuth(flow: Flow, ctx: StepContext): Promise<void> {
  const vault = flow.vault;
  let refreshed = false;
  for (const key of oauthKeysOf(flow)) {
    const record = vault!.credentials[key]!;
    const status = oauthStatusOf(record);
    if (status === "not_connected") continue; // inject answers oauth_not_connected
    if (status === "refresh_failed") {
      return answer(
        flow,
        "oauth_refresh_failed",
        `the provider refused to refresh ${key}: ${record.metadata.oauth_last_error ?? "no reason given"}; reconnect it with agent-vault oauth connect ${key}`,
      );
    }
    if (!isNearExpiry(record, ctx.now)) continue;
    try {
      await ctx.oauth.refresh(vault!.id, key);
      refreshed = true;
    } catch (error) {
      const reason = error instanceof TokenEndpointError ? error.reason : error instanceof Error ? error.message : String(error);
      // Retries are spent (or another process holds the refresh lock for longer than we wait): a
      // token that has not expired yet is still worth sending. Only a refusal is final.
      const refused = error instanceof TokenEndpointError && error.permanent;
      if (!refused && !isExpired(record, Date.now())) continue;
      return answer(flow, "oauth_refresh_failed", `refreshing ${key} failed: ${reason}`);
    }
  }
  if (refreshed) flow.vault = ctx.store.read().vaults.find((v) => v.id === vault!.id) ?? vault;
}

/**
 * After an upstream 401 on a flow that carried OAuth tokens: one forced refresh (skipped when
 * another request refreshed meanwhile), then the credentials are injected again. Returns false
 * with flow.answer set when the refresh failed.
 */
export async function refreshAfterUnauthorized(flow: Flow, ctx: StepContext, reinject: (flow: Flow, ctx: StepContext) => void): Promise<boolean> {
  const vault = flow.vault!;
  for (const { key, version } of flow.oauthUsed) {
    try {
      await ctx.oauth.refresh(vault.id, key, { force: true, ifUnchangedSince: version });
    } catch (error) {
      const reason = error instanceof TokenEndpointError ? error.reason : error instanceof Error ? error.message : String(error);
      answer(flow, "oauth_refresh_failed", `${flow.host} refused ${key} (401) and refreshing it failed: ${reason}`);
      return false;
    }
  }
  flow.vault = ctx.store.read().vaults.find((v) => v.id === vault.id) ?? vault;
  flow.path = flow.beforeInject!.path;
  flow.headers = { ...flow.beforeInject!.headers };
  flow.injected = [];
  flow.oauthUsed = [];
  reinject(flow, ctx);
  return flow.answer === undefined;
}
