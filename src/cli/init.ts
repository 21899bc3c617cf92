// `agent-vault init` and `agent-vault master-password set|change|remove`.
import { masterPasswordFromEnv } from "../shared/harden.ts";
import { type Command } from "commander";
import { AgentVaultError } from "../shared/errors.ts";
import { homePaths } from "../shared/paths.ts";
import { initializeHome, isInitialized, isInsecureTestKdf, MIN_PASSWORD_LENGTH, VaultStore } from "../vault/vault.ts";
import { openStore, withPasswordOption, type CommonOptions } from "./context.ts";
import { isInteractive, printNote, promptHidden, readStdinLine } from "./io.ts";

const NO_PASSWORD_WARNING = "warning: no master password. The data key is kept in a 0600 key file beside the vault; this protects nothing from a process running as your user.";

/** How often a terminal user may retype a new password that is too short or mistyped. */
const PROMPT_ATTEMPTS = 3;

/** A new password: stdin or the environment once, or asked twice on a terminal (again on a slip). */
async function readNewPassword(fromStdin: boolean | undefined, allowEnv: boolean, question: string): Promise<string> {
  if (fromStdin) return readStdinLine("the new master password");
  const fromEnv = masterPasswordFromEnv();
  if (allowEnv && fromEnv) return fromEnv;
  if (!isInteractive()) {
    throw new AgentVaultError("password_required", "a new master password is needed, and there is no terminal to ask on", {
      hint: allowEnv ? undefined : "pass --new-password-stdin",
    });
  }
  // A person at a terminal gets another try (like passwd), a script's single value does not.
  for (let attempt = 1; ; attempt++) {
    const last = attempt === PROMPT_ATTEMPTS;
    const first = await promptHidden(`${question} (at least ${MIN_PASSWORD_LENGTH} characters): `);
    if (first.length < MIN_PASSWORD_LENGTH) {
      if (last) throw new AgentVaultError("weak_password", `the master password must be at least ${MIN_PASSWORD_LENGTH} characters`);
      printNote(`too short: at least ${MIN_PASSWORD_LENGTH} characters; try again`);
      continue;
    }
    const second = await promptHidden("Repeat it: ");
    if (first === second) return first;
    if (last) throw new AgentVaultError("invalid_argument", "the two passwords differ; nothing was changed");
    printNote("the two passwords differ; try again");
  }
}

export function registerInit(program: Command): void {
  withPasswordOption(
    program
      .command("init")
      .description("create the data directory, its encrypted vault file and the `default` vault")
      .option("--no-password", "keep the data key in a 0600 key file instead of a master password (protects nothing from your own user)"),
  ).action(async (options: { password: boolean; passwordStdin?: boolean }) => {
    const paths = homePaths();
    // Refused before any password is asked for (initializeHome checks again under the lock).
    if (isInitialized(paths)) {
      throw new AgentVaultError("already_initialized", `agent-vault is already initialized in ${paths.home}`, {
        hint: "use it as it is, or set AGENT_VAULT_HOME to another directory",
      });
    }
    const password = options.password ? await readNewPassword(options.passwordStdin, true, "Choose a master password") : null;
    if (isInsecureTestKdf()) printNote("warning: AGENT_VAULT_INSECURE_TEST_KDF=1 is set: the key derivation is cheap, for tests only.");
    await initializeHome(paths, password);
    // The proxy's CA is made now, so `ca path` and agents' trust stores are ready before any run.
    const { ensureCertificateAuthority } = await import("../proxy/ca.ts");
    await ensureCertificateAuthority(await VaultStore.unlock(paths, async () => password ?? ""));
    if (password === null) printNote(NO_PASSWORD_WARNING);
    printNote(`initialized ${paths.home} with vault "default"`);
    printNote("next: agent-vault vault credential set KEY=-   (the value is read from stdin)");
  });
}

/**
 * Every master-password command rotates the data key; a running server holds the old one and
 * could neither read the vault nor prove itself afterwards. So it is stopped first (only once it
 * proves it is this vault's server), and the user is told to start it again.
 */
async function rotateKey(store: VaultStore, password: string | null): Promise<void> {
  const { stopVerifiedServer } = await import("../run/server-check.ts");
  let stopped: number | null = null;
  try {
    stopped = await stopVerifiedServer(store);
  } catch (error) {
    if (!(error instanceof AgentVaultError) || error.code !== "server_not_running") throw error;
  }
  await store.setPassword(password);
  if (stopped !== null) printNote(`stopped the running server (pid ${stopped}): it held the old key; start it again with \`agent-vault server -d\``);
}

export function registerMasterPassword(program: Command): void {
  const group = program.command("master-password").description("set, change or remove the master password (each rotates the data key: every value is sealed again)");
  withPasswordOption(group.command("set").description("protect a --no-password vault with a master password").option("--new-password-stdin", "read the new password from stdin")).action(
    async (options: CommonOptions & { newPasswordStdin?: boolean }) => {
      const store = await openStore(options);
      if (store.hasPassword) throw new AgentVaultError("conflict", "the vault already has a master password", { hint: "use `agent-vault master-password change`" });
      await rotateKey(store, await readNewPassword(options.newPasswordStdin, false, "New master password"));
      printNote("master password set; the key file was removed; the data key was rotated");
    },
  );
  withPasswordOption(group.command("change").description("change the master password").option("--new-password-stdin", "read the new password from the next line of stdin")).action(
    async (options: CommonOptions & { newPasswordStdin?: boolean }) => {
      const store = await openStore(options);
      if (!store.hasPassword) throw new AgentVaultError("conflict", "the vault has no master password", { hint: "use `agent-vault master-password set`" });
      await rotateKey(store, await readNewPassword(options.newPasswordStdin, false, "New master password"));
      printNote("master password changed; the data key was rotated, so an old copy of the vault and the old password open nothing written from now on");
    },
  );
  withPasswordOption(group.command("remove").description("drop the master password and keep the data key in a 0600 key file")).action(async (options: CommonOptions) => {
    const store = await openStore(options);
    if (!store.hasPassword) throw new AgentVaultError("conflict", "the vault has no master password");
    await rotateKey(store, null);
    printNote(NO_PASSWORD_WARNING);
  });
}
