// Factories for pipeline tests: a real unlocked vault with services and a session, and flows to
// push through single steps without sockets (STYLE: mitmproxy-style step tests).
import { makeFlow, type Flow } from "../../src/proxy/flow.ts";
import { netguardOptionsFromEnv } from "../../src/net/netguard.ts";
import { type StepContext } from "../../src/proxy/step-context.ts";
import { ProxyState } from "../../src/proxy/state.ts";
import { OAuthRefresher } from "../../src/oauth/refresh.ts";
import { AccessLimits } from "../../src/proxy/limits.ts";
import { setCredentials } from "../../src/vault/credentials.ts";
import { parseServiceInput, setServices } from "../../src/vault/services.ts";
import { createSession } from "../../src/vault/sessions.ts";
import { tempVault, type TempVault } from "./vault.ts";

export interface StepFixture extends TempVault {
  readonly token: string;
  readonly state: ProxyState;
  context(env?: NodeJS.ProcessEnv): StepContext;
  flow(init: Partial<Flow> & { host: string }): Flow;
}

export async function stepFixture(credentials: Record<string, string>, services: unknown[], sessionServices: string[] | null = null): Promise<StepFixture> {
  const base = await tempVault();
  await setCredentials(
    base.store,
    "default",
    Object.entries(credentials).map(([key, value]) => ({ key, value })),
  );
  await setServices(
    base.store,
    "default",
    services.map((s) => parseServiceInput(s)),
    true,
  );
  const { token } = await createSession(base.store, "default", { services: sessionServices });
  const state = new ProxyState(base.store);
  return {
    ...base,
    token,
    state,
    context: (env = {}) => ({
      snapshot: state.current(),
      store: base.store,
      options: { netguard: netguardOptionsFromEnv(env), maxRequestBytes: 1024, maxResponseBytes: 1024 },
      now: Date.now(),
      oauth: new OAuthRefresher(base.store, { backoffMs: [10, 20] }),
      limits: new AccessLimits(base.store),
      secrets: (vault) => state.secrets(vault),
    }),
    flow: (init) => Object.assign(makeFlow({ via: "tunnel", port: 443, method: "GET", path: "/", headers: {}, credential: token, ...init }), init),
  };
}
