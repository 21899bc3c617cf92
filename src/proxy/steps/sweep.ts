// Every 500 ms, for each open tunnel and WebSocket: is it still allowed? A revoked or expired
// session or agent loses its open tunnels, not only its next CONNECT; a WebSocket whose grant
// expired or was revoked closes too, not only its next handshake, and so does one that the
// policy as it stands now would refuse: a time window that closed, rules tightened since the
// handshake (red team, session 7: frames kept flowing past an 18:00 window).
import { refusalOf } from "../../vault/policy.ts";
import { isPrincipalLive, resolvePrincipal } from "../../vault/principals.ts";
import { type Snapshot } from "../state.ts";

export interface OpenConnection {
  /** The session or agent id it was opened under. */
  readonly principal: string;
  /** A WebSocket: the token, the service its grant must still cover, and its handshake's path. */
  readonly grant?: { readonly token: string; readonly service: string; readonly path: string };
}

export function isStillAllowed(open: OpenConnection, snapshot: Snapshot, now: number): boolean {
  if (!isPrincipalLive(snapshot.body, open.principal, now)) return false;
  if (!open.grant) return true;
  const { token, service, path } = open.grant;
  const principal = resolvePrincipal(snapshot.tokens, token, now);
  if ("error" in principal || (principal.services !== null && !principal.services.has(service))) return false;
  return principal.policies.every((holder) => refusalOf(holder.policy, service, "GET", path, now) === null);
}
