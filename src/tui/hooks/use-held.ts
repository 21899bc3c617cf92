// Requests held for a person (src/vault/held.ts), from the vault view's snapshot: every vault's
// pending ones, oldest first, so the banner shows one whichever vault is on screen. A request held
// since the last snapshot rings the bell (and a desktop notification where notify-send exists).
import { useEffect, useMemo, useRef } from "react";
import { allPendingHeld } from "../../vault/held.ts";
import { type Held } from "../../vault/held.schema.ts";
import { type Body } from "../../vault/state.schema.ts";

export interface PendingHeld {
  readonly vault: string;
  readonly held: Held;
}

export function useHeld(options: { readonly body: Body; readonly bell: boolean; readonly ring: () => void; readonly now: number }): readonly PendingHeld[] {
  const { body, bell, ring, now } = options;
  // Re-derived when the state changes or a deadline passes (now ticks once a second).
  const pending = useMemo(() => allPendingHeld(body, now).sort((a, b) => Date.parse(a.held.created_at) - Date.parse(b.held.created_at)), [body, now]);
  const seen = useRef<Set<string> | null>(null);
  useEffect(() => {
    const keys = new Set(pending.map((p) => `${p.vault}:${p.held.id}`));
    if (seen.current !== null && bell && [...keys].some((k) => !seen.current!.has(k))) ring();
    seen.current = keys;
  }, [pending, bell, ring]);
  return pending;
}
