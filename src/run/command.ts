// Finds the command `run` is asked to start before anything else happens (no password, no
// session), and answers a typo the way a shell does: 127 "command not found", 126 when the file is
// there but cannot be executed (bash's codes, which scripts around `run` already test for).
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { AgentVaultError } from "../shared/errors.ts";
import { displaySafe } from "../shared/text.ts";

function isExecutableFile(path: string): "ok" | "missing" | "not_executable" {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return "missing";
  }
  if (stat.isDirectory()) return "not_executable";
  try {
    accessSync(path, constants.X_OK);
    return "ok";
  } catch {
    return "not_executable";
  }
}

/** Throws command_not_found (127) or command_not_executable (126); returns nothing when it can run. */
export function checkCommand(name: string, pathVariable: string | undefined): void {
  const shown = displaySafe(name.slice(0, 200));
  if (name === "") throw new AgentVaultError("command_not_found", "the command is empty");
  if (name.includes("/")) {
    const found = isExecutableFile(name);
    if (found === "missing") throw new AgentVaultError("command_not_found", `${shown}: no such file or directory`);
    if (found === "not_executable") throw new AgentVaultError("command_not_executable", `${shown}: permission denied (a directory, or not executable)`);
    return;
  }
  // Like execvp: the first executable hit wins; a non-executable one is remembered for the message.
  let sawNonExecutable = false;
  for (const dir of (pathVariable ?? "").split(delimiter)) {
    const found = isExecutableFile(join(dir || ".", name));
    if (found === "ok") return;
    if (found === "not_executable") sawNonExecutable = true;
  }
  if (sawNonExecutable) throw new AgentVaultError("command_not_executable", `${shown}: permission denied (found on PATH, but not executable)`);
  throw new AgentVaultError("command_not_found", `${shown}: command not found`);
}
