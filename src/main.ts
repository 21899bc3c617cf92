// The composition root. `--version` answers before anything else loads; everything else goes
// through the commander program, whose heavy parts (proxy, TUI) are imported only when used.
import pkg from "../package.json" with { type: "json" };

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
  process.stdout.write(`${pkg.version}\n`);
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
