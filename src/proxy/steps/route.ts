// On CONNECT: read the tunnel or pass it through. A tunnel to a host a service covers is
// intercepted (TLS terminated with our leaf) so its requests go through the request steps. So is
// every tunnel when the vault denies unmatched hosts (each request then gets its 403), and under
// `--unmatched guard` (nothing injected, but the guard reads it), except hosts listed in
// guard_bypass (certificate pinning). Anything else is a plain TCP tunnel, which netguard still
// checks (guardPassthrough).
import { hostMatchesPattern } from "../../vault/host.ts";
import { type Service } from "../../vault/service.schema.ts";
import { type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";
import { guardNetwork } from "./netguard.ts";

export function routeTunnel(flow: Flow, ctx: StepContext): void {
  const settings = flow.vault!.settings;
  const matcher = ctx.snapshot.vaults.get(flow.vault!.id)?.matcher;
  const isGuarded = settings.unmatched === "guard" && !settings.guard_bypass.some((h) => hostMatchesPattern(flow.host, h));
  const covering = matcher?.servicesCovering(flow.host, flow.port) ?? [];
  const intercept = covering.length > 0 || settings.unmatched === "deny" || isGuarded;
  flow.route = intercept ? "intercept" : "tunnel";
  // The upstream connection is opened early only where a request may go on: a service this
  // principal may use (enabled, in its session's list or its grants) covers the host, or no service
  // covers it and it is guarded. Never where every request is refused: a disabled service, another
  // principal's service, an unmatched host under deny (a TCP and TLS handshake there would already
  // be egress to a host the vault refuses).
  const allowed = flow.principal?.services;
  const isUsable = (s: Service) => s.enabled && (!allowed || allowed.has(s.name));
  flow.warmUpstream = covering.some(isUsable) || (isGuarded && covering.length === 0);
}

/** A passthrough tunnel is dialled where netguard allows, like any request. */
export async function guardPassthrough(flow: Flow, ctx: StepContext): Promise<void> {
  if (flow.route === "tunnel") await guardNetwork(flow, ctx);
}
