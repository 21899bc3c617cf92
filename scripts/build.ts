// Compiles src/main.ts into one executable, dist/agent-vault. Ink imports react-devtools-core
// optionally; it is not installed and `--external` fails at run time, so a plugin stubs it.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

// AGENT_VAULT_BUILD_OUT builds elsewhere (tests then take AGENT_VAULT_TEST_BINARY), so two
// builds in one checkout do not overwrite each other's binary mid-test.
const outfile = process.env.AGENT_VAULT_BUILD_OUT ?? "dist/agent-vault";
mkdirSync(dirname(outfile), { recursive: true });
const result = await Bun.build({
  entrypoints: ["src/main.ts"],
  // The binary reads no bunfig.toml, .env, package.json or tsconfig.json from the directory it runs
  // in: an agent can write those into its repo, and they would run its code (a bunfig preload) or
  // set our environment (AGENT_VAULT_CONNECT_TO) inside the next agent-vault the user starts there.
  compile: { outfile, autoloadBunfig: false, autoloadDotenv: false, autoloadPackageJson: false, autoloadTsconfig: false },
  minify: true,
  // Split chunks: `--version` then parses only the entry, not the whole CLI (about 25 ms here).
  splitting: true,
  // React's production build: the development one checks and allocates on every render.
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  sourcemap: "none",
  plugins: [
    {
      name: "stub-react-devtools-core",
      setup(build) {
        build.onResolve({ filter: /^react-devtools-core$/ }, () => ({ path: "react-devtools-core", namespace: "stub" }));
        build.onLoad({ filter: /.*/, namespace: "stub" }, () => ({ contents: "export default { initialize() {}, connectToDevTools() {} };", loader: "js" }));
      },
    },
  ],
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile}`);
