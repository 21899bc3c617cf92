// The composition root. `--version` answers before anything else loads; everything else goes
// through the commander program, whose heavy parts (proxy, TUI) are imported only when used.
import pkg from "../package.json" with { type: "json" };

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
  process.stdout.write(`${pkg.version}\n`);
} else if (argv[0] === "sandbox-init") {
  // The init and relay `run` starts inside its sandbox (src/sandbox/init.ts): it reads no secret
  // and stands between the user and the agent's start, so it loads nothing else.
  const { sandboxInitMain } = await import("./sandbox/init.ts");
  process.exit(await sandboxInitMain(argv.slice(1)));
} else {
  // Before any password, key or token is read: other processes of the user (the agent) must not
  // be able to read this one's memory or environment (src/shared/harden.ts). Only commands that
  // cannot touch a secret skip it.
  const { hardenProcess, needsHardening } = await import("./shared/harden.ts");
  let hardened = true;
  if (needsHardening(argv)) {
    hardened = await hardenProcess().then(
      () => true,
      async (error: unknown) => {
        const { reportError } = await import("./cli/io.ts");
        process.exitCode = reportError(error);
        return false;
      },
    );
  }
  if (hardened) {
    const { runCli } = await import("./cli/program.ts");
    process.exitCode = await runCli(argv);
  }
}
