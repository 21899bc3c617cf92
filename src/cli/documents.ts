// Reading a JSON or YAML file given on the command line (`service set -f`, `run --policy`,
// `agent policy -f`): errors name the file and what is wrong with it.
import { readFileSync } from "node:fs";
import { AgentVaultError } from "../shared/errors.ts";
import { type Policy } from "../vault/agent.schema.ts";
import { parsePolicy } from "../vault/agents.ts";

export async function parseDocument(file: string): Promise<unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new AgentVaultError("invalid_argument", `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
  }
  try {
    // yaml is loaded only here, so other commands do not pay for parsing it at start.
    return /\.ya?ml$/i.test(file) ? (await import("yaml")).parse(text) : JSON.parse(text);
  } catch (error) {
    const kind = /\.ya?ml$/i.test(file) ? "YAML" : "JSON";
    throw new AgentVaultError("invalid_argument", `${file} is not valid ${kind}: ${(error as Error).message.split("\n")[0]}`);
  }
}

/** An access policy from a JSON or YAML file (`agent policy -f`, `run --policy`); a bad field names the file too. */
export async function readPolicyFile(file: string): Promise<Policy> {
  const document = await parseDocument(file);
  try {
    return parsePolicy(document);
  } catch (error) {
    if (error instanceof AgentVaultError) throw new AgentVaultError(error.code, `${file}: ${error.message}`);
    throw error;
  }
}
