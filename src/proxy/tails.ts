// What each (principal, host) left open at the end of its last request: the rests of values whose
// first piece ended one of its fields (secrets.ts `openRests`). The guard looks for them in the next
// request to that host, so a value cut across two requests is found there. Derived only from text
// the guard already passed (before injection, so never from a credential the proxy added), kept
// in memory, bounded in keys and rests.
import { type Pattern } from "./secrets.ts";

const MAX_KEYS = 4096;
const MAX_RESTS = 64;

export class RequestTails {
  private readonly rests = new Map<string, Pattern[]>();

  get(key: string): readonly Pattern[] {
    return this.rests.get(key) ?? [];
  }

  /** Replaces what `key` left open with this request's rests (the most recent keys kept). */
  set(key: string, rests: readonly Pattern[]): void {
    this.rests.delete(key);
    if (rests.length === 0) return;
    this.rests.set(key, rests.slice(-MAX_RESTS));
    if (this.rests.size > MAX_KEYS) this.rests.delete(this.rests.keys().next().value!);
  }

  /** Adds rests to what `key` left open (the end of a body, known after the headers). */
  add(key: string, rests: readonly Pattern[]): void {
    if (rests.length === 0) return;
    this.set(key, [...this.get(key), ...rests]);
  }
}

export function tailKey(principalId: string | undefined, host: string, port: number): string {
  return `${principalId ?? "-"} ${host}:${port}`;
}
