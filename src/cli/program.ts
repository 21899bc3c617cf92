// The commander wiring: every command group registered on one program, parse errors turned into
// exit code 2 with a hint, and every other failure reported once by reportError.
import { Command, CommanderError } from "commander";
import pkg from "../../package.json" with { type: "json" };
import { registerCredential } from "./credential.ts";
import { registerInit, registerMasterPassword } from "./init.ts";
import { AgentVaultError, ERROR_TABLE } from "../shared/errors.ts";
import { reportError } from "./io.ts";
import { registerOAuth } from "./oauth.ts";
import { registerAgent } from "./agent.ts";
import { registerAudit } from "./audit.ts";
import { registerProposal } from "./proposal.ts";
import { registerCa, registerRun, registerServer, registerSessionCommands, registerTui } from "./server.ts";
import { registerCatalog, registerService } from "./service.ts";
import { registerCompletion } from "./completion.ts";
import { registerDoctor } from "./doctor.ts";
import { registerLog } from "./log.ts";
import { registerStatus } from "./status.ts";
import { registerHeld } from "./held.ts";
import { registerVaultManagement } from "./vault.ts";

export function buildProgram(): Command {
  const program = new Command("agent-vault")
    .description("A credential broker for AI coding agents: agents hold placeholders, the proxy attaches the real keys.")
    .version(pkg.version, "-V, --version", "print the version")
    .showSuggestionAfterError(true)
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    // `agent-vault --vault work vault credential list`, as well as after the subcommand.
    .option("--vault <name>", "vault to use for the command that follows");
  registerInit(program);
  const vault = program.command("vault").description("vaults, credentials, services and settings");
  registerVaultManagement(vault);
  registerCredential(vault);
  registerService(vault);
  registerSessionCommands(vault);
  registerProposal(vault);
  registerServer(program);
  registerRun(program);
  registerTui(program);
  registerOAuth(program);
  registerAgent(program);
  program
    .command("mcp")
    .description("serve the Model Context Protocol on stdio for the agent holding AGENT_VAULT_SESSION_TOKEN (or AGENT_VAULT_AGENT_TOKEN)")
    .action(async () => {
      const { serveMcp } = await import("../mcp/server.ts");
      await serveMcp();
    });
  registerCa(program);
  registerCatalog(program);
  registerMasterPassword(program);
  registerStatus(program);
  registerHeld(program);
  registerDoctor(program);
  registerLog(program);
  registerAudit(program);
  registerCompletion(program);
  // Every subcommand inherits the same error handling.
  const configure = (command: Command) => {
    command
      .exitOverride()
      .configureOutput({ outputError: () => undefined })
      .showSuggestionAfterError(true);
    command.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  // The program's --vault is handed to the command that runs, if that command takes one.
  program.hook("preAction", (_program, action) => {
    const early = program.opts<{ vault?: string }>().vault;
    if (early === undefined) return;
    if (!action.options.some((option) => option.long === "--vault")) {
      throw new AgentVaultError("usage", `\`${action.name()}\` takes no --vault`);
    }
    const late = action.opts<{ vault?: string }>().vault;
    if (late !== undefined && late !== early) throw new AgentVaultError("usage", `--vault given twice ("${early}" and "${late}")`);
    action.setOptionValue("vault", early);
  });
  return program;
}

export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    const program = buildProgram();
    await program.parseAsync([...argv], { from: "user" });
    // `run` reports its child's exit code this way.
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.exitCode === 0) return 0;
      // A usage error goes the way of every other error: its exit code and hint from ERROR_TABLE.
      if (error.code === "commander.help") return ERROR_TABLE.usage.exit;
      // One line: commander puts its "Did you mean" suggestion on a line of its own.
      const message = error.message
        .replace(/^error: /, "")
        .replace(/\s*\n\s*/g, " ")
        .replace("(Did you mean", "(did you mean");
      return reportError(new AgentVaultError("usage", message));
    }
    return reportError(error);
  }
}
