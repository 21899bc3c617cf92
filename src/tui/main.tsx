// `agent-vault tui`: unlock (a masked prompt inside the TUI when the vault has a password and the
// environment gives none), then the app over its two stores. Ink restores the terminal on exit and
// on Ctrl-C.
import { masterPasswordFromEnv } from "../shared/harden.ts";
import { Box, render, Text } from "ink";
import { useState } from "react";
import { homePaths } from "../shared/paths.ts";
import { type VaultStore, VaultStore as Store } from "../vault/vault.ts";
import { resolveVaultName } from "../vault/vaults.ts";
import { App } from "./app.tsx";
import { MaskedInput } from "./components/MaskedInput.tsx";
import { KeysProvider } from "./hooks/use-keys.tsx";
import { LogTail } from "./stores/log-tail.ts";
import { VaultView } from "./stores/vault-view.ts";

const NEEDS_PASSWORD = Symbol("needs password");

export interface TuiOptions {
  readonly vault?: string | undefined;
  readonly bell: boolean;
}

function Unlock({ onUnlocked }: { readonly onUnlocked: (store: VaultStore) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [busy, setBusy] = useState(false);
  return (
    <KeysProvider initialOwner="unlock">
      <Box flexDirection="column">
        <Text bold>agent-vault</Text>
        <Text dimColor>{homePaths().home}</Text>
        {busy ? (
          <Text>unlocking…</Text>
        ) : (
          <MaskedInput
            key={attempt}
            id="unlock"
            label="Master password:"
            mask
            onCancel={() => process.exit(1)}
            onSubmit={(password) => {
              setBusy(true);
              Store.unlock(homePaths(), async () => password).then(onUnlocked, (e: Error) => {
                setBusy(false);
                setError(e.message);
                setAttempt((a) => a + 1);
              });
            }}
          />
        )}
        {error ? <Text color={process.env.NO_COLOR ? undefined : "red"}>{error}</Text> : null}
      </Box>
    </KeysProvider>
  );
}

function Root({ initial, options }: { readonly initial: VaultStore | null; readonly options: TuiOptions }) {
  const [parts, setParts] = useState(() => (initial ? start(initial, options) : null));
  if (!parts) return <Unlock onUnlocked={(store) => setParts(start(store, options))} />;
  return <App view={parts.view} log={parts.log} color={!process.env.NO_COLOR} bell={options.bell} />;
}

function start(store: VaultStore, options: TuiOptions): { view: VaultView; log: LogTail } {
  const body = store.read();
  const view = new VaultView(store, resolveVaultName(body, options.vault));
  const log = new LogTail(store.paths.requestLog);
  view.start();
  log.start();
  return { view, log };
}

export async function runTui(options: TuiOptions): Promise<void> {
  const fromEnv = masterPasswordFromEnv();
  let store: VaultStore | null = null;
  try {
    store = await Store.unlock(homePaths(), async () => {
      if (fromEnv) return fromEnv;
      throw NEEDS_PASSWORD;
    });
  } catch (error) {
    if (error !== NEEDS_PASSWORD) throw error;
  }
  // The alternate screen: the UI leaves nothing behind on exit, and the shell's screen returns.
  process.stdout.write("\x1b[?1049h\x1b[H");
  const restore = () => process.stdout.write("\x1b[?1049l");
  process.once("exit", restore);
  const instance = render(<Root initial={store} options={options} />, { exitOnCtrlC: true });
  await instance.waitUntilExit();
  instance.cleanup();
  process.exit(0);
}
