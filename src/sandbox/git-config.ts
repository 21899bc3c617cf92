// A git config file read the way git's config.c reads it, without running git: the file may be the
// agent's, and git reading it could run what it names (an include, a pager). Only as much of the
// grammar as decides which key holds which value; a line this cannot read is reported by line, and
// git, reading the same line, stops with "bad config line" in most such cases.

export interface ConfigEntry {
  /** `section.name` or `section.subsection.name`: section and name lower-cased, the subsection as written. */
  readonly key: string;
  readonly section: string;
  readonly subsection: string | null;
  readonly name: string;
  /** null for a bare `name` (git's boolean true). */
  readonly value: string | null;
  readonly line: number;
}

export interface ParsedConfig {
  readonly entries: readonly ConfigEntry[];
  /** The line at which reading stopped, when it did. */
  readonly badLine: number | null;
}

const SPACE = new Set([" ", "\t", "\v", "\f", "\r"]);
const isKeyChar = (c: string) => /^[A-Za-z0-9-]$/.test(c);

export function parseGitConfig(raw: string): ParsedConfig {
  // git skips a UTF-8 byte order mark and reads "\r\n" as "\n".
  const text = raw.replace(/^\ufeff/, "").replace(/\r\n/g, "\n");
  const entries: ConfigEntry[] = [];
  let section: string | null = null;
  let subsection: string | null = null;
  let line = 1;
  let i = 0;
  const fail = (): ParsedConfig => ({ entries, badLine: line });
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n") {
      line++;
      i++;
    } else if (SPACE.has(c)) {
      i++;
    } else if (c === "#" || c === ";") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "[") {
      // `[section]`, `[section "sub"]`, or the old `[section.sub]` (lower-cased whole). A key may
      // follow on the same line.
      i++;
      let name = "";
      while (i < text.length && (isKeyChar(text[i]!) || text[i] === ".")) name += text[i++];
      if (name === "") return fail();
      subsection = null;
      if (text[i] === " " || text[i] === "\t") {
        while (text[i] === " " || text[i] === "\t") i++;
        if (text[i] !== '"') return fail();
        i++;
        let sub = "";
        for (;;) {
          const s = text[i++];
          if (s === undefined || s === "\n") return fail();
          if (s === '"') break;
          if (s === "\\") {
            const escaped = text[i++];
            if (escaped === undefined || escaped === "\n") return fail();
            sub += escaped;
          } else sub += s;
        }
        subsection = sub;
      }
      if (text[i] !== "]") return fail();
      i++;
      const dot = name.indexOf(".");
      if (subsection === null && dot !== -1) {
        subsection = name.slice(dot + 1).toLowerCase();
        name = name.slice(0, dot);
      }
      section = name.toLowerCase();
    } else if (/[A-Za-z]/.test(c)) {
      if (section === null) return fail();
      let name = "";
      while (i < text.length && isKeyChar(text[i]!)) name += text[i++];
      while (text[i] === " " || text[i] === "\t") i++;
      let value: string | null = null;
      const at = line;
      if (i < text.length && text[i] !== "\n") {
        if (text[i] !== "=") return fail();
        const parsed = parseValue(text, i + 1);
        if (!parsed) return fail();
        value = parsed.value;
        line += parsed.lines;
        i = parsed.end;
      }
      const lower = name.toLowerCase();
      entries.push({ key: subsection === null ? `${section}.${lower}` : `${section}.${subsection}.${lower}`, section, subsection, name: lower, value, line: at });
    } else {
      return fail();
    }
  }
  return { entries, badLine: null };
}

/** A value from just after `=` to its end of line: quotes, escapes, `\` continuations, comments. */
function parseValue(text: string, start: number): { value: string; end: number; lines: number } | null {
  let value = "";
  let pendingSpace = 0;
  let isQuoted = false;
  let lines = 0;
  let i = start;
  while (text[i] === " " || text[i] === "\t") i++;
  for (;;) {
    const c = text[i];
    if (c === undefined || c === "\n") {
      if (isQuoted) return null;
      return { value, end: i, lines };
    }
    i++;
    if (!isQuoted && (c === "#" || c === ";")) {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    if (!isQuoted && SPACE.has(c)) {
      // Spaces inside a value are kept (as one space each), trailing ones dropped.
      if (value !== "") pendingSpace++;
      continue;
    }
    value += " ".repeat(pendingSpace);
    pendingSpace = 0;
    if (c === "\\") {
      const escaped = text[i++];
      if (escaped === "\n") lines++;
      else if (escaped === "\\" || escaped === '"') value += escaped;
      else if (escaped === "n") value += "\n";
      else if (escaped === "t") value += "\t";
      else if (escaped === "b") value += "\b";
      else return null;
    } else if (c === '"') {
      isQuoted = !isQuoted;
    } else {
      value += c;
    }
  }
}

/**
 * Keys whose value git runs, or that bring in more config or send git elsewhere to run something:
 * keyed by section (`section` for keys without a subsection, `section.*` for keys with one),
 * listing the names, `*` for every name.
 */
const PROGRAM_KEYS: Readonly<Record<string, readonly string[]>> = {
  core: ["fsmonitor", "hookspath", "pager", "editor", "sshcommand", "askpass", "gitproxy", "alternaterefscommand", "worktree"],
  alias: ["*"],
  "alias.*": ["*"],
  pager: ["*"],
  "pager.*": ["*"],
  include: ["path"],
  "includeif.*": ["path"],
  sequence: ["editor"],
  "filter.*": ["clean", "smudge", "process"],
  init: ["templatedir"],
  imap: ["tunnel"],
  instaweb: ["httpd"],
  "hook.*": ["command", "event"],
  diff: ["external"],
  "diff.*": ["textconv", "command"],
  "merge.*": ["driver"],
  "mergetool.*": ["cmd", "path"],
  "difftool.*": ["cmd", "path"],
  credential: ["helper"],
  "credential.*": ["helper"],
  gpg: ["program"],
  "gpg.*": ["program", "defaultkeycommand"],
  uploadpack: ["packobjectshook"],
  "remote.*": ["uploadpack", "receivepack", "vcs"],
  "url.*": ["insteadof", "pushinsteadof"],
  "protocol.*": ["allow"],
  protocol: ["allow"],
  "submodule.*": ["update"],
  interactive: ["difffilter"],
  sendemail: ["smtpserver", "tocmd", "cccmd", "headercmd", "sendmailcmd"],
  "sendemail.*": ["smtpserver", "tocmd", "cccmd", "headercmd", "sendmailcmd"],
  "trailer.*": ["command", "cmd"],
  "tar.*": ["command"],
  web: ["browser"],
  "browser.*": ["cmd", "path"],
  "man.*": ["cmd", "path"],
  "guitool.*": ["cmd"],
  // git-lfs: lfs.customtransfer.NAME.path (with lfs.standalonetransferagent) and lfs.extension.NAME.clean/smudge.
  "lfs.*": ["path", "clean", "smudge"],
};

export function runsProgram(entry: ConfigEntry): boolean {
  const names = PROGRAM_KEYS[entry.subsection === null ? entry.section : `${entry.section}.*`];
  return names !== undefined && (names.includes("*") || names.includes(entry.name));
}

/** Whether git would read another file because of this entry (include.path, includeIf.*.path). */
export function isInclude(entry: ConfigEntry): boolean {
  return entry.name === "path" && ((entry.section === "include" && entry.subsection === null) || (entry.section === "includeif" && entry.subsection !== null));
}
