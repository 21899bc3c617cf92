// `agent-vault doctor [--json]`: runs the checks in doctor-checks.ts and prints one line each, ✓ or
// ✗ (or - when it could not be checked, e.g. without the password), with the command that fixes a
// ✗ below it. Exit 0 when nothing failed, 1 otherwise; a skipped check does not fail.
import { type Command } from "commander";
import { homePaths } from "../shared/paths.ts";
import { displaySafe } from "../shared/text.ts";
import { type CommonOptions, withJsonOption, withPasswordOption } from "./context.ts";
import { type CheckResult, runChecks } from "./doctor-checks.ts";
import { printJson } from "./io.ts";
import { unlockIfPossible } from "./unlock-optional.ts";

const MARK = { ok: "✓", fail: "✗", skip: "-" } as const;

function printChecks(results: readonly CheckResult[]): void {
  const width = Math.max(...results.map((r) => r.title.length));
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${MARK[r.status]} ${r.title.padEnd(width)}  ${displaySafe(r.summary)}`);
    if (r.fix) lines.push(`  ${" ".repeat(width)}  fix: ${displaySafe(r.fix)}`);
  }
  const failed = results.filter((r) => r.status === "fail").length;
  const skipped = results.filter((r) => r.status === "skip").length;
  lines.push("", `${results.length - failed - skipped} passed, ${failed} failed${skipped > 0 ? `, ${skipped} not checked` : ""}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

export function registerDoctor(program: Command): void {
  withJsonOption(withPasswordOption(program.command("doctor").description("check the setup (CA, bundle, Node, sandbox, permissions, clock, server) and say how to fix what fails"))).action(
    async (options: CommonOptions) => {
      const paths = homePaths();
      const unlocked = await unlockIfPossible(paths, options);
      const results = await runChecks({ paths, unlocked, env: process.env, now: Date.now() });
      const failed = results.some((r) => r.status === "fail");
      if (options.json) printJson({ ok: !failed, checks: results });
      else printChecks(results);
      if (failed) process.exitCode = 1;
    },
  );
}
