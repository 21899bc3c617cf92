// On CONNECT: how many connections one session or agent may hold open through the proxy. Each
// intercepted tunnel is an agent-side socket and usually an upstream one; an agent that opens
// tunnels and leaves them idle would otherwise take the server's file descriptors from every other
// session (a red team filled a shared server's 20,000 with one sandboxed process).
import { answer, type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

export const MAX_OPEN_PER_PRINCIPAL = 1024;

export function limitConnections(flow: Flow, ctx: StepContext): void {
  const principal = flow.principal;
  if (!principal || !ctx.openConnections) return;
  const open = ctx.openConnections(principal.id);
  if (open < MAX_OPEN_PER_PRINCIPAL) return;
  answer(flow, "rate_limited", `this session already holds ${open} connections open through the proxy (at most ${MAX_OPEN_PER_PRINCIPAL}); close idle ones`);
}
