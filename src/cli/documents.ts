// Reading a JSON or YAML file given on the command line (`service set -f`, `run --policy`,
// `agent policy -f`): errors name the file, the line (and for a syntax error the column) when the parser knows it, and what is wrong.
import { readFileSync } from "node:fs";
import { AgentVaultError } from "../shared/errors.ts";
import { displaySafe } from "../shared/text.ts";
import { type Policy } from "../vault/agent.schema.ts";
import { parsePolicy } from "../vault/agents.ts";

/** A parsed file, and where a path inside it is (`services.yaml:12`), for messages. */
export interface Document {
  readonly data: unknown;
  locate(path: readonly PropertyKey[]): string;
}

const READ_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "it is a directory",
  ENOTDIR: "a part of the path is not a directory",
};

const isYaml = (file: string) => /\.ya?ml$/i.test(file);

export async function readDocument(file: string): Promise<Document> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    throw new AgentVaultError("invalid_argument", `cannot read ${file}: ${READ_ERRORS[code] ?? (code || "error")}`);
  }
  // yaml is loaded only here, so other commands do not pay for parsing it at start. It also finds
  // lines in a JSON file (JSON is YAML), which JSON.parse cannot.
  const yaml = await import("yaml");
  let data: unknown;
  if (isYaml(file)) {
    const doc = yaml.parseDocument(text, { prettyErrors: false });
    const first = doc.errors[0];
    if (first) {
      throw new AgentVaultError("invalid_argument", `${file}:${lineAndColumn(text, first.pos[0])}: not valid YAML: ${yamlReason(first)}`);
    }
    data = doc.toJS();
  } else {
    try {
      data = JSON.parse(text);
    } catch (error) {
      // JSON.parse says what but not where; the YAML parser usually finds the line. A raw control
      // character (JSON allows none, not even in a string) YAML lets pass: it is found here, and
      // named escaped, as the parser's words are (it may quote the character).
      const first = yaml.parseDocument(text, { prettyErrors: false }).errors[0];
      const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.exec(text);
      if (control && (!first || control.index <= first.pos[0])) {
        const code = `\\u${control[0].charCodeAt(0).toString(16).padStart(4, "0")}`;
        throw new AgentVaultError(
          "invalid_argument",
          `${file}:${lineAndColumn(text, control.index)}: not valid JSON: a raw control character (${displaySafe(control[0])}); write it as ${code} inside a string`,
        );
      }
      const where = first ? `${file}:${lineAndColumn(text, first.pos[0])}` : file;
      throw new AgentVaultError("invalid_argument", `${where}: not valid JSON: ${displaySafe((error as Error).message.split("\n")[0]!.replace(/^JSON Parse error: /, ""))}`);
    }
  }
  return { data, locate: (path) => locateIn(yaml, text, file, path) };
}

/** `line:column` (both from 1, as editors count) of a character offset in `text`. */
function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lineStart = before.lastIndexOf("\n") + 1;
  return `${before.split("\n").length}:${before.length - lineStart + 1}`;
}

/**
 * The parser's complaint in a few words. Its own sentences are long and written for YAML's
 * grammar ("Flow sequence in block collection must be sufficiently indented and end with a ]");
 * the common ones are said as what to fix, the rest cut to their first line and 100 characters.
 * Either way the text is made safe to print: a message may quote a character of the file.
 */
function yamlReason(error: { readonly code: string; readonly message: string }): string {
  const message = error.message.split("\n")[0]!.trim();
  const said = YAML_REASONS.find(([pattern]) => pattern.test(message));
  const reason = said ? message.replace(said[0], said[1]) : message.replace(/^[A-Z](?![A-Z])/, (c) => c.toLowerCase()).replace(/[.:]$/, "");
  const safe = displaySafe(reason);
  return safe.length > 100 ? `${safe.slice(0, 99)}…` : safe;
}

const YAML_REASONS: readonly (readonly [RegExp, string])[] = [
  [/^Flow sequence in block collection must be sufficiently indented and end with a \]$/, "a [ list is not closed with ] (or a line inside it is not indented)"],
  [/^Flow map in block collection must be sufficiently indented and end with a \}$/, "a { map is not closed with } (or a line inside it is not indented)"],
  [/^Missing closing "quote$/, 'a " string is not closed'],
  [/^Missing closing 'quote$/, "a ' string is not closed"],
  [/^Sequence item without - indicator$/, "a line is indented like a list item but has no -"],
  [/^All sequence items must start at the same column$/, "the - of list items are not in one column"],
  [/^Nested mappings are not allowed in compact mappings$/, 'a second ": " on one line (quote the value if it holds ": ")'],
  [/^Implicit map keys need to be followed by map values$/, 'a line with no ": " where a key and value are expected'],
  [/^Implicit keys need to be on a single line$/, "a key runs over more than one line"],
  [/^Map keys must be unique$/, "the same key is given twice"],
  [/^Tabs are not allowed as indentation$/, "a tab used for indentation (indent with spaces)"],
  [/^Unresolved tag: .*$/, "an unknown ! tag"],
  [/^Plain value cannot start with (.*)$/, "a value cannot start with $1 (quote it)"],
  [/^Comments must be separated from other tokens by white space characters$/, "a # comment needs a space before it"],
];

/** `file:line` of the deepest node of `path` that exists (a missing field: its object), else `file`. */
function locateIn(yaml: typeof import("yaml"), text: string, file: string, path: readonly PropertyKey[]): string {
  try {
    const lineCounter = new yaml.LineCounter();
    const doc = yaml.parseDocument(text, { lineCounter });
    for (let depth = path.length; depth >= 0; depth--) {
      const parent = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth - 1) as unknown[], true);
      let offset: number | undefined;
      if (depth === 0) offset = (parent as { range?: [number] } | null)?.range?.[0];
      else if (yaml.isMap(parent)) {
        // The key's own position: an unknown field's line is its key's line.
        const pair = parent.items.find((item) => (yaml.isScalar(item.key) ? item.key.value : item.key) === path[depth - 1]);
        offset = (pair?.key as { range?: [number] } | undefined)?.range?.[0];
      } else if (yaml.isSeq(parent)) {
        offset = (parent.items[Number(path[depth - 1])] as { range?: [number] } | undefined)?.range?.[0];
      }
      if (offset !== undefined) return `${file}:${lineCounter.linePos(offset).line}`;
    }
  } catch {
    // a position is a nicety; the message stands without it
  }
  return file;
}

/** The parsed contents of a JSON or YAML file. */
export async function parseDocument(file: string): Promise<unknown> {
  return (await readDocument(file)).data;
}

/** An access policy from a JSON or YAML file (`agent policy -f`, `run --policy`); a bad field names the file and line. */
export async function readPolicyFile(file: string): Promise<Policy> {
  const document = await readDocument(file);
  try {
    return parsePolicy(document.data);
  } catch (error) {
    if (error instanceof AgentVaultError) {
      const path = (error.details?.path as PropertyKey[] | undefined) ?? [];
      throw new AgentVaultError(error.code, `${document.locate(path)}: ${error.message}`);
    }
    throw error;
  }
}
