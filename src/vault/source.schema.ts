// Credential sources (DESIGN `vault credential source`, docs/team.md): a credential whose value is
// fetched from a secrets system the team already runs. Only the reference is stored, sealed like a
// value with kind "credential" and the key in its associated data, so nothing short of the data
// key can point a key at another command. Pure: parsing and the argv each reference runs.
import { z } from "zod";
import { AgentVaultError } from "../shared/errors.ts";

export const DEFAULT_SOURCE_TTL_MS = 5 * 60_000;
export const MIN_SOURCE_TTL_MS = 1_000;
export const MAX_SOURCE_TTL_MS = 24 * 3_600_000;
const MAX_REFERENCE = 1024;

/** What is sealed in a source credential's `value`. */
export const SourceSpecSchema = z
  .object({
    from: z.string().min(1).max(MAX_REFERENCE),
    ttl_ms: z.number().int().min(MIN_SOURCE_TTL_MS).max(MAX_SOURCE_TTL_MS),
  })
  .strict();
export type SourceSpec = z.infer<typeof SourceSpecSchema>;

export type SourceKind = "pass" | "gopass" | "op" | "vault" | "exec";

export interface SourceCommand {
  readonly kind: SourceKind;
  /** argv[0] is a bare name looked up on the source PATH, or an absolute path (exec: only). */
  readonly argv: readonly string[];
  /** pass and gopass keep the secret on the first line and notes below it. */
  readonly firstLineOnly: boolean;
}

// A store path: no option-looking start, no `..`, no control characters, no spaces (pass
// accepts them, but a path with a space is a typo far more often than a name).
const STORE_PATH = /^(?!-)(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._@+=,:~/-]{1,256}$/;
const OP_PART = /^[^/\s?#\0-\x1f\x7f][^/?#\0-\x1f\x7f]{0,199}$/;
const VAULT_MOUNT = /^(?!-)[A-Za-z0-9._-]{1,128}$/;
const VAULT_FIELD = /^(?!-)[A-Za-z0-9._@+-]{1,128}$/;
// Characters a shell would act on: refused outside quotes, so nobody believes a pipe or a `$VAR`
// works when no shell runs.
const SHELL_SPECIAL = new Set(["|", "&", ";", "<", ">", "(", ")", "$", "`", "*", "?", "[", "]", "{", "}", "~", "!", "#"]);

function refuse(from: string, why: string): never {
  throw new AgentVaultError("invalid_argument", `source "${from.slice(0, 120)}" ${why}`, {
    hint: "write pass:PATH, gopass:PATH, op://VAULT/ITEM/FIELD, vault:MOUNT/PATH#FIELD or exec:COMMAND",
  });
}

/** Shell-like words without a shell: quotes ('…', "…") and backslash escapes, nothing expanded. */
export function splitWords(from: string, text: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c.charCodeAt(0) < 0x20 || c === "\x7f") refuse(from, "has a control character");
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && (text[i + 1] === '"' || text[i + 1] === "\\")) word += text[++i]!;
      else word += c;
      continue;
    }
    if (c === " ") {
      if (word !== null) words.push(word);
      word = null;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (c === "\\") {
      if (i + 1 >= text.length) refuse(from, "ends in a backslash");
      word = (word ?? "") + text[++i]!;
    } else if (SHELL_SPECIAL.has(c)) {
      refuse(from, `uses "${c}", which needs a shell; no shell runs here: quote it, or put the pipeline in a script and name the script`);
    } else word = (word ?? "") + c;
  }
  if (quote) refuse(from, "has an unclosed quote");
  if (word !== null) words.push(word);
  return words;
}

/** The command a reference runs. Throws invalid_argument naming what is wrong. */
export function sourceCommandOf(from: string): SourceCommand {
  if (from.length > MAX_REFERENCE) refuse(from, `is longer than ${MAX_REFERENCE} characters`);
  if (from.startsWith("pass:") || from.startsWith("gopass:")) {
    const kind = from.startsWith("pass:") ? "pass" : "gopass";
    const path = from.slice(kind.length + 1);
    if (!STORE_PATH.test(path)) refuse(from, "needs a store path like team/github-token (letters, digits, ._@+=,:~-/; no .., no leading -)");
    // `--` ends the options, so a path can never be read as one (belt and braces with STORE_PATH).
    return kind === "pass" ? { kind, argv: ["pass", "show", "--", path], firstLineOnly: true } : { kind, argv: ["gopass", "show", "--password", "--", path], firstLineOnly: true };
  }
  if (from.startsWith("op://")) {
    const parts = from.slice(5).split("/");
    if (parts.length < 3 || parts.length > 4 || !parts.every((p) => OP_PART.test(p))) refuse(from, "needs op://VAULT/ITEM/FIELD (or op://VAULT/ITEM/SECTION/FIELD)");
    // 1Password CLI: `op read` prints one field; --no-newline drops the newline it adds.
    return { kind: "op", argv: ["op", "read", "--no-newline", from], firstLineOnly: false };
  }
  if (from.startsWith("vault:")) {
    const rest = from.slice(6);
    const hash = rest.lastIndexOf("#");
    const slash = rest.indexOf("/");
    const mount = rest.slice(0, slash);
    const path = rest.slice(slash + 1, hash);
    const field = rest.slice(hash + 1);
    if (hash < 0 || slash < 0 || slash > hash || !VAULT_MOUNT.test(mount) || !STORE_PATH.test(path) || !VAULT_FIELD.test(field)) {
      refuse(from, "needs vault:MOUNT/PATH#FIELD, e.g. vault:secret/team/github#token");
    }
    // HashiCorp Vault / OpenBao KV (v1 or v2): -mount names the engine, -field prints one field
    // with no trailing newline.
    return { kind: "vault", argv: ["vault", "kv", "get", `-mount=${mount}`, `-field=${field}`, path], firstLineOnly: false };
  }
  if (from.startsWith("exec:")) {
    const argv = splitWords(from, from.slice(5));
    if (argv.length === 0) refuse(from, "names no command");
    const first = argv[0]!;
    if (first.includes("/") && !first.startsWith("/")) refuse(from, "names a relative path; give an absolute path or a bare name found on the source PATH");
    return { kind: "exec", argv, firstLineOnly: false };
  }
  return refuse(from, "is not a known kind of source");
}

/** A source spec from what a person or a proposal typed; checks the reference now. */
export function makeSourceSpec(from: string, ttlMs: number = DEFAULT_SOURCE_TTL_MS): SourceSpec {
  sourceCommandOf(from);
  if (!Number.isInteger(ttlMs) || ttlMs < MIN_SOURCE_TTL_MS || ttlMs > MAX_SOURCE_TTL_MS) {
    throw new AgentVaultError("invalid_argument", `a source's TTL is between 1s and 24h, not ${ttlMs} ms`);
  }
  return { from, ttl_ms: ttlMs };
}

export function parseSourceSpec(text: string): SourceSpec {
  try {
    return SourceSpecSchema.parse(JSON.parse(text));
  } catch {
    throw new AgentVaultError("vault_corrupt", "a source credential's sealed reference is not a source spec");
  }
}
