// Step 5b: fetch the values of source credentials (src/sources/cache.ts) the matched service
// injects, before placeholders and inject read them. The values stay in the cache, never on the
// flow; inject and placeholders ask for them through sourcedValue. A source with no good value
// answers 502 source_unavailable naming the source and why (never the command's output).
import { AgentVaultError } from "../../shared/errors.ts";
import { getCredentialValue, sourceSpecOf } from "../../vault/credentials.ts";
import { credentialKeysOf } from "../../vault/service.schema.ts";
import { type VaultRecord } from "../../vault/state.schema.ts";
import { answer, type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

export async function fetchSources(flow: Flow, ctx: StepContext): Promise<void> {
  const { service, vault } = flow;
  if (!service || !vault) return;
  for (const key of credentialKeysOf(service.auth)) {
    if (vault.credentials[key]?.type !== "source") continue;
    const spec = sourceSpecOf(ctx.store, vault, key);
    if (!ctx.sources) return answer(flow, "source_unavailable", `credential ${key} comes from ${spec.from.slice(0, 200)}, which this proxy cannot fetch`);
    try {
      await ctx.sources.ensure(vault.id, key, spec);
    } catch (error) {
      const message = error instanceof AgentVaultError ? error.message : `credential ${key} comes from ${spec.from.slice(0, 200)}, which failed`;
      return answer(flow, "source_unavailable", message);
    }
    const failing = ctx.sources.failingReason(vault.id, key, spec);
    if (failing !== null) flow.note = `credential ${key}: its source ${spec.from.slice(0, 200)} fails (${failing}); its last good value was sent`;
  }
}

/** The value of a source credential fetched for this request, or null when there is none. */
export function sourcedValue(ctx: StepContext, vault: VaultRecord, key: string): string | null {
  return ctx.sources?.peek(vault.id, key, sourceSpecOf(ctx.store, vault, key)) ?? null;
}

/** A credential's value wherever it lives: the vault, or the source cache. */
export function credentialValueFor(ctx: StepContext, vault: VaultRecord, key: string): string {
  if (vault.credentials[key]?.type !== "source") return getCredentialValue(ctx.store, vault, key);
  const value = sourcedValue(ctx, vault, key);
  if (value === null) throw new AgentVaultError("source_unavailable", `credential ${key} has no value from its source yet`);
  return value;
}
