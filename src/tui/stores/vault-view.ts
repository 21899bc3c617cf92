// The vault as the TUI sees it: a store outside React that re-reads the vault file when another
// process writes it (an agent's proposal, a credential set elsewhere) and tells subscribers. It
// holds metadata only: a value is opened solely for an explicit, timed reveal.
import { type Body, type VaultRecord } from "../../vault/state.schema.ts";
import { type VaultStore } from "../../vault/vault.ts";
import { findVault } from "../../vault/vaults.ts";

export interface VaultSnapshot {
  readonly body: Body;
  readonly vault: VaultRecord;
  readonly error: string | null;
}

export class VaultView {
  readonly store: VaultStore;
  private vaultName: string;
  private snapshot: VaultSnapshot;
  private readonly listeners = new Set<() => void>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(store: VaultStore, vaultName: string) {
    this.store = store;
    this.vaultName = vaultName;
    const body = store.read();
    this.snapshot = { body, vault: findVault(body, vaultName), error: null };
  }

  /** Polls the file's version (a stat) every interval; a change re-reads and notifies. */
  start(intervalMs = 300): void {
    this.timer = setInterval(() => this.refresh(), intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  refresh(): void {
    try {
      const body = this.store.read();
      if (body === this.snapshot.body && this.snapshot.error === null) return;
      const vault = body.vaults.find((v) => v.name === this.vaultName) ?? body.vaults[0]!;
      this.vaultName = vault.name;
      this.snapshot = { body, vault, error: null };
    } catch (error) {
      this.snapshot = { ...this.snapshot, error: (error as Error).message };
    }
    for (const listener of this.listeners) listener();
  }

  switchTo(name: string): void {
    this.vaultName = name;
    this.snapshot = { ...this.snapshot, vault: findVault(this.snapshot.body, name) };
    for (const listener of this.listeners) listener();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): VaultSnapshot => this.snapshot;
}
