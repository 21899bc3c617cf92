// Step 5b: held requests. After policy and the guard (a request either refuses is refused, never
// held) and before placeholders and inject (no value is opened for a request a person may still
// refuse), an `approve` entry of the agent's or session's policy holds the request until a person
// allows it (`held allow`, the TUI's y/s), denies it (403 approval_denied) or lets it time out
// (403 approval_timeout). Nothing reaches the upstream meanwhile: not even a dial.
//
// The approval binds method, host, port, path and the SHA-256 of the body as the agent sent it. A
// request without a body waits here; one with a body waits in the exchange, after the guard read
// the body whole (flow.checkWholeBody), so the hash is of exactly what would be sent. A body past
// the guard's buffer (8 MiB) cannot be bound that way and is refused.
import { displaySafe } from "../../shared/text.ts";
import { type Answer, problem } from "../../shared/answers.ts";
import { type HeldRequest, isAllowedForSession } from "../../vault/held.ts";
import { isPrincipalLive } from "../../vault/principals.ts";
import { HELD_PREVIEW_CHARS } from "../../vault/held.schema.ts";
import { approvalOf, type ApprovalNeed, normalizePath, pathReadings } from "../../vault/policy.ts";
import { EMPTY_BODY_SHA256, heldWaitsFor, sha256Hex } from "../held-waits.ts";
import { early, type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

/** A body preview for the person answering: its first characters, display-safe, never a value. */
function previewOf(decoded: Buffer): string {
  const text = displaySafe(decoded.subarray(0, HELD_PREVIEW_CHARS * 4).toString("utf8"));
  return text.length > HELD_PREVIEW_CHARS || decoded.length > HELD_PREVIEW_CHARS * 4 ? `${text.slice(0, HELD_PREVIEW_CHARS)}…` : text;
}

function hasBody(flow: Flow): boolean {
  const length = flow.headers["content-length"];
  return flow.headers["transfer-encoding"] !== undefined || (length !== undefined && String(length) !== "0");
}

function needOf(flow: Flow): ApprovalNeed | null {
  for (const holder of flow.principal?.policies ?? []) {
    const need = approvalOf(holder.policy, flow.service?.name ?? null, flow.method, flow.path);
    if (need) return need;
  }
  return null;
}

export async function holdForApproval(flow: Flow, ctx: StepContext): Promise<void> {
  const { principal, vault } = flow;
  if (!principal || !vault || !flow.service) return;
  const need = needOf(flow);
  if (!need) return;
  const session = principal.session?.id ?? null;
  if (isAllowedForSession(vault, session, flow.method, flow.host, need.rule)) return;
  // The person judges the target as shown, and a banner or table cuts it to the terminal: a path
  // padded with `./` or `//` (`/repos/mine/docs/./././…/../../theirs/prod/transfer`) would show
  // one repository and act on another. Only a path already in the form a server reads is held: no
  // `;` parameters either (`/repos/mine/..;/theirs` is /repos/theirs to Tomcat and Spring), and
  // nothing a server reading `%2F` or `%5C` as `/` would resolve further (`/repos/mine%2F..%2Ftheirs`).
  const bare = flow.path.split("?")[0]!.replace(/%[0-9a-f]{2}/gi, (m) => m.toUpperCase());
  const separated = bare.replace(/%2F|%5C/g, "/");
  const readings = pathReadings(bare);
  if (normalizePath(bare) !== bare || bare.includes(";") || readings.some((r) => r !== bare && r !== separated)) {
    const plain = readings.at(-1) ?? normalizePath(bare);
    flow.answer = early(
      flow,
      problem(
        "invalid_request",
        `a request held for approval needs a plain path (no ./ or ../ segments, repeated slashes, escaped letters or ; parameters, also with %2F read as /): send ${plain.slice(0, 200)}`,
      ),
    );
    return;
  }
  const request = (bodySha256: string, bodyBytes: number, preview: string): HeldRequest => ({
    vaultId: vault.id,
    principal: principal.id,
    session,
    agent: principal.agent?.name ?? null,
    method: flow.method,
    host: flow.host,
    port: flow.port,
    path: flow.path,
    rule: need.rule,
    bodySha256,
    bodyBytes,
    preview,
    timeoutMs: need.timeoutMs,
  });
  const waits = heldWaitsFor(ctx.store);
  // A wait can outlast the session (revoked, its run ended): an approval then sends nothing.
  const wait = async (held: HeldRequest): Promise<Answer | null> => {
    const refusal = await waits.wait(held);
    if (refusal) return refusal;
    let live = false;
    try {
      live = isPrincipalLive(ctx.store.read(), principal.id);
    } catch {
      live = false;
    }
    return live ? null : problem("unauthorized", `held request for ${flow.method} ${flow.host} was allowed, but the session ended while it waited; nothing was sent`);
  };
  if (!hasBody(flow)) {
    const refusal = await wait(request(EMPTY_BODY_SHA256, 0, ""));
    if (refusal) flow.answer = early(flow, refusal);
    return;
  }
  // The policy may already look at the body (a `_method` field, steps/policy.ts): that comes first.
  const before = flow.checkWholeBody;
  flow.checkWholeBody = async (body) => (await before?.(body)) ?? wait(request(sha256Hex(body.sent), body.sent.length, previewOf(body.decoded)));
}
