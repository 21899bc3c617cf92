// Terminal input and output for the CLI: reading stdin once, masked prompts, tables, JSON, and
// the one error format (`agent-vault: error: ...` then `hint: ...`). Nothing here knows the vault.
// Everything printed here may hold text from an agent or an upstream (a description, a provider's
// error), so tables, notes, errors and JSON go through src/shared/text.ts on the way out.
import { AgentVaultError, isAgentVaultError } from "../shared/errors.ts";
import { displaySafe, displaySafeLines, jsonTerminalSafe } from "../shared/text.ts";
import { paint, statusStyle } from "./colour.ts";

let stdinText: Promise<string> | null = null;
let stdinOffset = 0;

async function readAllStdin(): Promise<string> {
  stdinText ??= (async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks).toString("utf8");
  })();
  return stdinText;
}

/** The next line of stdin (without its newline): --password-stdin reads the first line this way. */
export async function readStdinLine(what: string): Promise<string> {
  const text = await readAllStdin();
  if (stdinOffset >= text.length) {
    throw new AgentVaultError("invalid_argument", `expected ${what} on stdin, but stdin ${text.length === 0 ? "is empty" : "has no more lines"}`, {
      hint: "give each secret on its own line of stdin, e.g. printf '%s\\n' \"$VALUE\" | agent-vault ...",
    });
  }
  const end = text.indexOf("\n", stdinOffset);
  const line = text.slice(stdinOffset, end === -1 ? text.length : end);
  stdinOffset = end === -1 ? text.length : end + 1;
  return line.replace(/\r$/, "");
}

/** The rest of stdin, minus one trailing newline: a `KEY=-` value. */
export async function readStdinRest(what: string): Promise<string> {
  const text = await readAllStdin();
  const rest = text.slice(stdinOffset).replace(/\r?\n$/, "");
  stdinOffset = text.length;
  if (rest.length === 0) throw new AgentVaultError("invalid_argument", `expected ${what} on stdin, but stdin is empty`);
  return rest;
}

export function isInteractive(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

/** Asks on the terminal without echoing what is typed. Ctrl-C cancels, Ctrl-U clears. */
export async function promptHidden(question: string): Promise<string> {
  if (!isInteractive()) throw new AgentVaultError("password_required", `${question.replace(/:\s*$/, "")} is needed, and there is no terminal to ask on`);
  const stdin = process.stdin;
  // Raw mode first: a quick typist's first characters would otherwise be echoed.
  stdin.setRawMode(true);
  process.stderr.write(question);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = "";
    const finish = (error: AgentVaultError | null) => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (data: Buffer) => {
      for (const char of data.toString("utf8")) {
        if (char === "\r" || char === "\n") return finish(null);
        if (char === "\u0003" || char === "\u001b") return finish(new AgentVaultError("cancelled", "cancelled"));
        if (char === "\u0015") value = "";
        else if (char === "\u007f" || char === "\b") value = value.slice(0, -1);
        else if (char >= " ") value += char;
      }
    };
    stdin.on("data", onData);
  });
}

/** A yes/no question on the terminal; false when there is no terminal. */
export async function confirm(question: string): Promise<boolean> {
  if (!isInteractive()) return false;
  process.stderr.write(`${question} [y/N] `);
  const answer = await new Promise<string>((resolve) => {
    process.stdin.once("data", (d) => resolve(d.toString()));
    process.stdin.resume();
  });
  process.stdin.pause();
  return /^y(es)?$/i.test(answer.trim());
}

/** JSON for scripts; C1, DEL and bidi characters inside strings are written as \u escapes (same value). */
export function printJson(value: unknown): void {
  process.stdout.write(`${jsonTerminalSafe(JSON.stringify(value, null, 2))}\n`);
}

export interface TableOptions {
  /** Each cell is cut at this many characters first (default 48). */
  readonly max?: number;
  /** Columns never cut to fit the width (a revealed value is no use cut). */
  readonly keep?: readonly number[];
  /** The column whose words (pending, active, revoked…) are coloured on a terminal. */
  readonly status?: number;
  /** Columns cut first (a title, free text) before every column gives way. */
  readonly cutFirst?: readonly number[];
  /** Columns left out when cutting `cutFirst` is not enough (what `--json` still has). */
  readonly optional?: readonly number[];
}

/** The width tables fit: the terminal's, else $COLUMNS, else 80. */
export function tableWidth(): number {
  if (process.stdout.isTTY && process.stdout.columns) return process.stdout.columns;
  const fromEnv = Number(process.env.COLUMNS);
  return Number.isInteger(fromEnv) && fromEnv >= 20 ? fromEnv : 80;
}

/**
 * Column widths that fit `width` (null: the column is left out). The `cutFirst` columns (free
 * text) give way first, down to their header's width; if that is not enough the `optional` ones
 * are left out; then the widest column gives way, so short columns (ids, statuses, times) stay whole and the
 * long one is cut with "…".
 */
function fitWidths(natural: readonly number[], floors: readonly number[], width: number, cutFirst: readonly number[], optional: readonly number[]): (number | null)[] {
  const widths: (number | null)[] = [...natural];
  const total = () => {
    const shown = widths.filter((w): w is number => w !== null);
    return shown.reduce((a, b) => a + b, 0) + 2 * (shown.length - 1);
  };
  const shrink = (pool: readonly number[]) => {
    while (total() > width) {
      let widest = -1;
      for (const i of pool) if (widths[i] !== null && widths[i]! > floors[i]! && (widest === -1 || widths[i]! > widths[widest]!)) widest = i;
      if (widest === -1) return; // nothing left to give: the line runs long rather than lose a needed column
      widths[widest] = widths[widest]! - 1;
    }
  };
  shrink(cutFirst);
  for (const i of optional) if (total() > width) widths[i] = null;
  shrink(widths.map((_, i) => i));
  return widths;
}

/**
 * Left-aligned columns, headers in capitals; cells are escaped (line breaks too), cut at `max`,
 * then the table is fitted to the terminal's width (80 when piped) by cutting its long column with
 * "…"; lines never wrap. On a terminal the headers are bold and the status column coloured.
 */
export function printTable(headers: readonly string[], rows: readonly (readonly string[])[], options: number | TableOptions = {}): void {
  const { max = 48, keep = [], status, cutFirst = [], optional = [] } = typeof options === "number" ? { max: options } : options;
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, Math.max(0, n - 1))}…` : s);
  const cells = [headers, ...rows].map((r) => r.map((c) => cut(displaySafe(c), max)));
  const natural = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const floors = natural.map((n, i) => (keep.includes(i) ? n : Math.min(n, Math.max(headers[i]!.length, 4))));
  const widths = fitWidths(natural, floors, tableWidth(), cutFirst, optional);
  const out = process.stdout;
  const last = widths.findLastIndex((w) => w !== null);
  const lines = cells.map((r, row) =>
    r
      .flatMap((c, i) => {
        const w = widths[i];
        if (w === null || w === undefined) return [];
        const text = cut(c, w);
        const padded = i === last ? text : text.padEnd(w);
        // Padding is measured before colour is added, so columns stay aligned.
        if (row === 0) return [paint(out, "bold", padded)];
        return [i === status ? paint(out, statusStyle(text), padded) : padded];
      })
      .join("  ")
      .trimEnd(),
  );
  out.write(`${lines.join("\n")}\n`);
}

/** A note on stderr; it may span lines (`\n`), anything else unsafe is escaped. */
export function printNote(text: string): void {
  const lines = displaySafeLines(text);
  // Our own "warning:" stands out on a terminal; the text after it is as safe as any note.
  if (lines[0]!.startsWith("warning: ")) lines[0] = `${paint(process.stderr, "yellow", "warning:")}${lines[0]!.slice("warning:".length)}`;
  process.stderr.write(`${lines.join("\n")}\n`);
}

/** `agent-vault: error: …` (error: in red on a terminal) and a dim `hint: …`; both made safe first. */
export function printError(message: string, hint?: string): void {
  const err = process.stderr;
  err.write(`agent-vault: ${paint(err, "red", "error:")} ${displaySafe(message)}\n`);
  if (hint) err.write(`${paint(err, "dim", `hint: ${displaySafe(hint)}`)}\n`);
}

/** The one place errors reach the user: a line, a hint, and never a stack trace. */
export function reportError(error: unknown): number {
  if (isAgentVaultError(error)) {
    printError(error.message, error.hint);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  printError(`unexpected failure: ${message.split("\n")[0]!}`, "this is a bug in agent-vault; run with AGENT_VAULT_DEBUG=1 for details and report it");
  if (process.env.AGENT_VAULT_DEBUG === "1" && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  return 1;
}

/** Relative, human times for tables: "3m ago", "in 2d". */
export function formatWhen(iso: string | null, now = Date.now()): string {
  if (iso === null) return "-";
  const delta = Date.parse(iso) - now;
  const abs = Math.abs(delta);
  const text =
    abs < 60_000 ? `${Math.round(abs / 1000)}s` : abs < 3_600_000 ? `${Math.round(abs / 60_000)}m` : abs < 86_400_000 ? `${Math.round(abs / 3_600_000)}h` : `${Math.round(abs / 86_400_000)}d`;
  return delta < 0 ? `${text} ago` : `in ${text}`;
}
