// Per request: how the exchange treats it. The upstream scheme (a plain http:// request to a
// service goes upstream over TLS: credentials never travel in clear), whether the guard reads the
// body, and whether the response is scrubbed. Guard and scrubbing are vault settings; the MCP
// server's http_request asks for scrubbing (X-Agent-Vault-Scrub: 1 on the explicit route) whatever
// the setting. The patterns are looked up when needed: after a 401 refresh the new tokens are in
// flow.vault.
import { type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

export function chooseInspection(flow: Flow, ctx: StepContext): void {
  const vault = flow.vault;
  if (!vault) return;
  const injects = Boolean(flow.service && flow.service.auth.type !== "passthrough");
  flow.scheme = flow.via === "http" && !injects ? "http" : "https";
  const current = () => ctx.secrets(flow.vault ?? vault);
  if (vault.settings.guard) flow.guardBody = current;
  const asked = flow.via === "explicit" && flow.headers["x-agent-vault-scrub"] === "1";
  if (vault.settings.scrub || asked) flow.scrubBody = current;
}
