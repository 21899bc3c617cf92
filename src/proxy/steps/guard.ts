// Step 5: the exfiltration guard, on the request line and headers (forward.ts does the body). A
// request that carries the value of any credential of the vault, in any of the forms secrets.ts
// knows, is refused with 403 credential_exfiltration naming the key (never the value) before any
// byte goes upstream. It runs after the agent's own auth headers are stripped and before inject,
// so the one injection the matched service makes is not counted against it.
import { type Pattern, findSecret } from "../secrets.ts";
import { answer, type Flow } from "../flow.ts";
import { type StepContext } from "../pipeline.ts";

const FORM_NAMES: Record<string, string> = { raw: "as is", base64: "base64-encoded", base64url: "base64url-encoded", url: "URL-encoded", hex: "hex-encoded", json: "JSON-escaped" };

export function refuseExfiltration(flow: Flow, hit: Pattern, where: string): void {
  flow.blocked = hit.key;
  answer(flow, 403, "credential_exfiltration", `the request carries the value of credential ${hit.key} (${FORM_NAMES[hit.form] ?? hit.form}, in ${where}); nothing was sent to ${flow.host}`, { credential: hit.key });
}

export function guardRequest(flow: Flow, ctx: StepContext): void {
  const vault = flow.vault;
  if (!vault?.settings.guard) return;
  const patterns = ctx.secrets(vault);
  if (patterns.length === 0) return;
  // One search over the host (a value spelled as a DNS label would leak through the lookup), the
  // path and every header; only a hit is then located, for the message.
  const lines = [flow.host, flow.path];
  for (const [name, value] of Object.entries(flow.headers)) if (value !== undefined) lines.push(`${name}: ${Array.isArray(value) ? value.join(", ") : value}`);
  const hit = findSecret(lines.join("\n"), patterns);
  if (!hit) return;
  if (findSecret(`${flow.host}\n${flow.path}`, patterns)) return refuseExfiltration(flow, hit, "the URL");
  const header = lines.slice(2).find((line) => findSecret(line, patterns)) ?? "a header";
  return refuseExfiltration(flow, hit, `the ${header.split(":")[0]} header`);
}
