// Step 2: which service of the session's vault this request is for (or none).
import { answer, type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";
import { parseHostPattern } from "../../vault/host.ts";

export function matchService(flow: Flow, ctx: StepContext): void {
  const entry = flow.vault ? ctx.snapshot.vaults.get(flow.vault.id) : undefined;
  flow.service = entry ? entry.matcher.match(flow.host, flow.port, flow.path) : null;
  const carved = entry?.matcher.carvedOut(flow.host, flow.port, flow.path, flow.service);
  if (!carved) return;
  const pattern = parseHostPattern(carved.host);
  const prefix = typeof pattern === "string" ? null : pattern.pathPrefix;
  if (prefix !== null && flow.path.split("?")[0]!.startsWith(prefix) && flow.service) {
    // Under the prefix as sent: the cause is the vault's services, not the spelling (a port
    // outranks a path prefix, and `service add` warned of it).
    answer(
      flow,
      "invalid_request",
      `this path is under ${carved.host} (service ${carved.name}), but service ${flow.service.name} (${flow.service.host}) takes this request first (a port outranks a path prefix), so it is refused rather than sent with either key: give service ${carved.name} the port too`,
    );
    return;
  }
  answer(
    flow,
    "invalid_request",
    `this path may read as under ${carved.host} (service ${carved.name}) on a server that ignores case or ; parameters, though not as sent: send it as that server reads it`,
  );
}
