// The composition root. `--version` answers before anything else loads; everything else goes
// through the commander program, whose heavy parts (proxy, TUI) are imported only when used.
import pkg from "../package.json" with { type: "json" };

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
  process.stdout.write(`${pkg.version}\n`);
} else {
  const { runCli } = await import("./cli/program.ts");
  process.exitCode = await runCli(argv);
}
