// The end of what each (principal, host) sent last, so a value split across consecutive requests
// to one host is seen whole: the guard searches this tail joined to the next request. Only text
// the guard already passed is kept (before injection, so never a credential the proxy added),
// in memory, bounded in entries and length.

const MAX_ENTRIES = 4096;

export class RequestTails {
  private readonly tails = new Map<string, string>();

  get(key: string): string {
    return this.tails.get(key) ?? "";
  }

  /** Keeps the last `length` characters of `text` for `key`, the most recent keys first. */
  set(key: string, text: string, length: number): void {
    this.tails.delete(key);
    if (length <= 0) return;
    this.tails.set(key, text.slice(Math.max(0, text.length - length)));
    if (this.tails.size > MAX_ENTRIES) this.tails.delete(this.tails.keys().next().value!);
  }
}

export function tailKey(principalId: string | undefined, host: string, port: number): string {
  return `${principalId ?? "-"} ${host}:${port}`;
}
