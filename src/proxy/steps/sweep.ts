// Every 500 ms, for each open tunnel and WebSocket: is it still allowed? A revoked or expired
// session or agent loses its open tunnels, not only its next CONNECT; a WebSocket whose grant
// expired or was revoked closes too, not only its next handshake.
import { isPrincipalLive, resolvePrincipal } from "../../vault/principals.ts";
import { type Snapshot } from "../state.ts";

export interface OpenConnection {
  /** The session or agent id it was opened under. */
  readonly principal: string;
  /** A WebSocket: the token and the service its grant must still cover. */
  readonly grant?: { readonly token: string; readonly service: string };
}

export function isStillAllowed(open: OpenConnection, snapshot: Snapshot, now: number): boolean {
  if (!isPrincipalLive(snapshot.body, open.principal, now)) return false;
  if (!open.grant) return true;
  const principal = resolvePrincipal(snapshot.tokens, open.grant.token, now);
  return !("error" in principal) && (principal.services === null || principal.services.has(open.grant.service));
}
