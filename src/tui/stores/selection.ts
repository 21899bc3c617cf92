// The highlighted row of each screen, by row key (a proposal id, a credential key), so a row
// arriving above it does not move what `a` or `d` acts on. Outside React: a key handled before the
// next frame (type-ahead) reads the selection the previous key left, not the last render's.
export class Selection {
  private keys: (string | null)[];
  private readonly listeners = new Set<() => void>();

  constructor(private readonly screens: number) {
    this.keys = Array.from({ length: screens }, () => null);
  }

  get(screen: number): string | null {
    return this.keys[screen] ?? null;
  }

  set(screen: number, key: string | null): void {
    if (this.keys[screen] === key) return;
    this.keys = this.keys.map((k, i) => (i === screen ? key : k));
    this.notify();
  }

  /** Another vault: nothing selected anywhere. */
  reset(): void {
    this.keys = Array.from({ length: this.screens }, () => null);
    this.notify();
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
}
