// Every 500 ms, for each open tunnel and WebSocket: is it still allowed? A revoked or expired
// session or agent loses its open tunnels, not only its next CONNECT; a WebSocket whose grant
// expired or was revoked closes too, not only its next handshake, and so does one that the
// policy as it stands now would refuse or hold: a time window that closed, rules tightened since
// the handshake, an approve entry added for its path (red team, session 7: frames kept flowing
// past an 18:00 window).
import { isAllowedForSession } from "../../vault/held.ts";
import { approvalOf, refusalOf } from "../../vault/policy.ts";
import { isPrincipalLive, resolvePrincipal } from "../../vault/principals.ts";
import { type Snapshot } from "../state.ts";

export interface OpenConnection {
  /** The session or agent id it was opened under. */
  readonly principal: string;
  /** A WebSocket: the token, the service its grant must still cover, and its handshake's host and path. */
  readonly grant?: { readonly token: string; readonly service: string; readonly host: string; readonly path: string };
}

export function isStillAllowed(open: OpenConnection, snapshot: Snapshot, now: number): boolean {
  if (!isPrincipalLive(snapshot.body, open.principal, now)) return false;
  if (!open.grant) return true;
  const { token, service, host, path } = open.grant;
  const principal = resolvePrincipal(snapshot.tokens, token, now);
  if ("error" in principal || (principal.services !== null && !principal.services.has(service))) return false;
  return principal.policies.every((holder) => {
    if (refusalOf(holder.policy, service, "GET", path, now) !== null) return false;
    // A path that now needs a person's approval needs it for an open WebSocket too, unless one was
    // given for the session (a handshake now would be held).
    const need = approvalOf(holder.policy, service, "GET", path);
    return need === null || isAllowedForSession(principal.vault, principal.session?.id ?? null, "GET", host, need.rule);
  });
}
