// Step 5: attach the credential (DESIGN's Services table). Values are opened from the vault here,
// in memory, per request, and written only into the outbound headers or URL.
import { getCredentialValue } from "../../vault/credentials.ts";
import { FRONTING_HEADERS, TEMPLATE_REFERENCE } from "../../vault/service.schema.ts";
import { answer, type Flow } from "../flow.ts";
import { oauthKeysOf } from "./oauth.ts";
import { sourcedValue } from "./sources.ts";
import { type StepContext } from "../step-context.ts";
import { signAws } from "./sigv4.ts";

export function injectCredential(flow: Flow, ctx: StepContext): void {
  const service = flow.service;
  const vault = flow.vault;
  if (!service || !vault) return;
  // Only an OAuth token may be refreshed and injected again after a 401: keep what to start from.
  if (oauthKeysOf(flow).length > 0) flow.beforeInject = { path: flow.path, headers: { ...flow.headers } };
  const value = (key: string): string | null => {
    if (!(key in vault.credentials)) {
      answer(flow, "credential_not_found", `service "${service.name}" needs credential ${key}, which vault "${vault.name}" does not have`);
      return null;
    }
    if (vault.credentials[key]!.type === "oauth" && vault.credentials[key]!.metadata.oauth_status !== "connected") {
      answer(flow, "oauth_not_connected", `credential ${key} is an OAuth credential that is not connected yet`);
      return null;
    }
    if (vault.credentials[key]!.type === "source") {
      const sourced = sourcedValue(ctx, vault, key);
      if (sourced === null) answer(flow, "source_unavailable", `credential ${key} has no value from its source`);
      else flow.injected.push(key);
      return sourced;
    }
    flow.injected.push(key);
    if (vault.credentials[key]!.type === "oauth") flow.oauthUsed.push({ key, version: vault.credentials[key]!.updated_at });
    return getCredentialValue(ctx.store, vault, key);
  };
  const auth = service.auth;
  switch (auth.type) {
    case "passthrough":
      return;
    case "bearer": {
      const token = value(auth.token);
      if (token !== null) flow.headers.authorization = `Bearer ${token}`;
      return;
    }
    case "basic": {
      const user = value(auth.username);
      const pass = auth.password ? value(auth.password) : "";
      if (user !== null && pass !== null) flow.headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
      return;
    }
    case "api-key": {
      const key = value(auth.key);
      // A header a front end routes by is never written, even from a service stored before it was refused.
      if (key !== null && !FRONTING_HEADERS.has(auth.header.toLowerCase())) flow.headers[auth.header.toLowerCase()] = `${auth.prefix}${key}`;
      return;
    }
    case "custom": {
      const rendered: Record<string, string> = {};
      for (const [name, template] of Object.entries(auth.headers)) {
        if (FRONTING_HEADERS.has(name.toLowerCase())) continue;
        let failed = false;
        rendered[name.toLowerCase()] = template.replace(TEMPLATE_REFERENCE, (_, key: string) => {
          const v = value(key);
          if (v === null) failed = true;
          return v ?? "";
        });
        if (failed) return;
      }
      Object.assign(flow.headers, rendered);
      return;
    }
    case "query": {
      const key = value(auth.key);
      if (key === null) return;
      const pair = `${encodeURIComponent(auth.param)}=${encodeURIComponent(key)}`;
      flow.path += flow.path.includes("?") ? `&${pair}` : `?${pair}`;
      return;
    }
    case "aws-sigv4":
      return signAws(flow, auth, value);
  }
}
