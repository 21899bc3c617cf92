// Step 1: who is asking. The token comes from the CONNECT (remembered for the tunnel), from
// Proxy-Authorization on a plain request (Basic `token:vault`, as HTTPS_PROXY=http://TOKEN:VAULT@...
// sends it, or Bearer), or from the Bearer of an explicit /proxy/ request. Checked on every request,
// so expiry and revocation act inside open tunnels too.
import { resolvePrincipal } from "../../vault/principals.ts";
import { answer, type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

/** The session token in a Proxy-Authorization or Authorization header, if any. */
export function tokenFromAuthorization(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme = "", value = ""] = header.trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme)) return value || undefined;
  if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const token = colon === -1 ? decoded : decoded.slice(0, colon);
    return token || undefined;
  }
  return undefined;
}

export function authenticate(flow: Flow, ctx: StepContext): void {
  if (!flow.credential) return answer(flow, "unauthorized", "no agent-vault session token; run the agent with `agent-vault run -- <command>`");
  const principal = resolvePrincipal(ctx.snapshot.tokens, flow.credential, ctx.now);
  if ("error" in principal) return answer(flow, "unauthorized", principal.error);
  flow.principal = principal;
  flow.vault = ctx.snapshot.vaults.get(principal.vault.id)?.vault ?? principal.vault;
}
