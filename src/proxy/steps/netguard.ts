// Step 6: where to dial. Resolve, check every address, remember the checked one for the dial.
import { isAgentVaultError } from "../../shared/errors.ts";
import { answer, type Flow } from "../flow.ts";
import { resolveDial } from "../../net/netguard.ts";
import { type StepContext } from "../step-context.ts";

export async function guardNetwork(flow: Flow, ctx: StepContext): Promise<void> {
  try {
    flow.dial = await resolveDial(flow.host, flow.port, ctx.options.netguard);
  } catch (error) {
    if (isAgentVaultError(error)) return answer(flow, error.code, error.message);
    throw error;
  }
}
