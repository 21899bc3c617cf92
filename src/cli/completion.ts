// `agent-vault completion bash|zsh|fish`: shell completion generated from commander's own command
// tree, so every command and option registered on the program is covered without a list to keep.
// It reads no vault and no password (src/shared/harden.ts lets it skip hardening). The scripts hold
// only our command and option names; no word the user typed is ever evaluated by them.
import { type Command, type Option } from "commander";
import { AgentVaultError } from "../shared/errors.ts";

/** One node of the command tree, as the scripts need it. */
export interface CompletionNode {
  /** Command words from the root, space-separated ("" for the program itself). */
  readonly path: string;
  readonly subcommands: readonly { readonly name: string; readonly aliases: readonly string[]; readonly description: string }[];
  readonly options: readonly { readonly flags: readonly string[]; readonly takesValue: boolean; readonly description: string }[];
  /** `run -- <command>`: after `--` the words are another program's. */
  readonly passesThrough: boolean;
}

const HELP_OPTION = { flags: ["-h", "--help"], takesValue: false, description: "show help" } as const;

function optionOf(option: Option) {
  const flags = [option.short, option.long].filter((f): f is string => typeof f === "string");
  return { flags, takesValue: option.required || option.optional, description: option.description };
}

/** Walks the program: every command, with its subcommands' names and aliases and its options. */
export function completionTree(program: Command): CompletionNode[] {
  const nodes: CompletionNode[] = [];
  const visit = (command: Command, path: string) => {
    const visible = command.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    const subcommands = visible.map((c) => ({ name: c.name(), aliases: c.aliases(), description: c.description() }));
    if (visible.length > 0) subcommands.push({ name: "help", aliases: [], description: "show help for a command" });
    const options = [...command.options.filter((o) => !o.hidden).map(optionOf), HELP_OPTION];
    nodes.push({ path, subcommands, options, passesThrough: (command as unknown as { _passThroughOptions?: boolean })._passThroughOptions === true });
    for (const sub of visible) visit(sub, path === "" ? sub.name() : `${path} ${sub.name()}`);
  };
  visit(program, "");
  return nodes;
}

/** A word safe inside single quotes in every shell we generate for. */
function quote(text: string): string {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, " ");
}

/**
 * The shared walk, as POSIX-shell case functions bash and zsh both run: which subcommand a word
 * names under a path (aliases resolved), which options take a value, and the candidates at a path.
 */
function caseFunctions(nodes: readonly CompletionNode[]): string {
  const sub: string[] = [];
  const valued: string[] = [];
  const words: string[] = [];
  const flags: string[] = [];
  for (const node of nodes) {
    for (const s of node.subcommands) for (const name of [s.name, ...s.aliases]) sub.push(`    ${quote(`${node.path}|${name}`)}) REPLY=${quote(s.name)} ;;`);
    for (const o of node.options) if (o.takesValue) for (const f of o.flags) valued.push(quote(`${node.path}|${f}`));
    words.push(`    ${quote(node.path)}) REPLY=${quote(node.subcommands.map((s) => s.name).join(" "))} ;;`);
    flags.push(`    ${quote(node.path)}) REPLY=${quote(node.options.flatMap((o) => o.flags).join(" "))} ;;`);
  }
  const through = nodes.filter((n) => n.passesThrough).map((n) => quote(n.path));
  return [
    "_agent_vault_sub() {",
    "  REPLY=",
    '  case "$1|$2" in',
    ...sub,
    "  esac",
    "}",
    "_agent_vault_valued() {",
    '  case "$1|$2" in',
    valued.length > 0 ? `    ${valued.join("|")}) return 0 ;;` : "",
    "  esac",
    "  return 1",
    "}",
    "_agent_vault_through() {",
    '  case "$1" in',
    through.length > 0 ? `    ${through.join("|")}) return 0 ;;` : "",
    "  esac",
    "  return 1",
    "}",
    "_agent_vault_words() {",
    "  REPLY=",
    '  case "$1" in',
    ...words,
    "  esac",
    "}",
    "_agent_vault_flags() {",
    "  REPLY=",
    '  case "$1" in',
    ...flags,
    "  esac",
    "}",
    // Sets _av_path (the command words so far) and _av_state: words, value (the word after an
    // option that takes one), or command (after `run ... --`: another program's words).
    "_agent_vault_walk() {",
    "  _av_path= _av_state=words",
    "  local w",
    '  for w in "$@"; do',
    '    if [ "$_av_state" = value ]; then _av_state=words; continue; fi',
    '    if [ "$_av_state" = command ] || [ "$_av_state" = args ]; then _av_state=args; continue; fi',
    '    case "$w" in',
    '      --) if _agent_vault_through "$_av_path"; then _av_state=command; fi ;;',
    "      --*=*) ;;",
    '      -*) if _agent_vault_valued "$_av_path" "$w"; then _av_state=value; fi ;;',
    '      *) _agent_vault_sub "$_av_path" "$w"',
    '         if [ -n "$REPLY" ]; then _av_path="${_av_path:+$_av_path }$REPLY"; fi ;;',
    "    esac",
    "  done",
    "}",
  ].join("\n");
}

function bashScript(nodes: readonly CompletionNode[]): string {
  return `# agent-vault completion for bash. Load it with:  source <(agent-vault completion bash)
${caseFunctions(nodes)}
_agent_vault() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  _agent_vault_walk "\${COMP_WORDS[@]:1:COMP_CWORD-1}"
  case "$_av_state" in
    value|args) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    command) COMPREPLY=($(compgen -c -- "$cur" | sort -u)); return ;;
  esac
  if [[ "$cur" == -* ]]; then _agent_vault_flags "$_av_path"; else _agent_vault_words "$_av_path"; fi
  COMPREPLY=($(compgen -W "$REPLY" -- "$cur"))
}
complete -o bashdefault -o default -F _agent_vault agent-vault
`;
}

function zshScript(nodes: readonly CompletionNode[]): string {
  // zsh's own completion system, with each command's and option's description.
  const described: string[] = [];
  for (const node of nodes) {
    const subs = node.subcommands.map((s) => quote(`${s.name.replace(/:/g, "\\:")}:${oneLine(s.description)}`));
    const opts = node.options.flatMap((o) => o.flags.map((f) => quote(`${f.replace(/:/g, "\\:")}:${oneLine(o.description)}`)));
    described.push(`    ${quote(node.path)}) subs=(${subs.join(" ")}); opts=(${opts.join(" ")}) ;;`);
  }
  return `#compdef agent-vault
# agent-vault completion for zsh. Load it with:  source <(agent-vault completion zsh)
# (or save it as _agent-vault in a directory on your $fpath)
${caseFunctions(nodes)}
_agent_vault() {
  local -a subs opts
  local REPLY _av_path _av_state
  _agent_vault_walk "\${(@)words[2,CURRENT-1]}"
  case "$_av_state" in
    value|args) _files; return ;;
    command) _command_names -e; return ;;
  esac
  case "$_av_path" in
${described.join("\n")}
  esac
  if [[ "$PREFIX" == -* ]]; then _describe -t options option opts; else _describe -t commands command subs; fi
}
if [ "$funcstack[1]" = "_agent_vault" ] || [ "$funcstack[1]" = "_agent-vault" ]; then
  _agent_vault "$@"
else
  (( $+functions[compdef] )) || { autoload -Uz compinit && compinit; }
  compdef _agent_vault agent-vault
fi
`;
}

function fishScript(nodes: readonly CompletionNode[]): string {
  // fish: a function gives the command path of the line so far; each candidate is one `complete`.
  const sub: string[] = [];
  const valued: string[] = [];
  for (const node of nodes) {
    for (const s of node.subcommands) for (const name of [s.name, ...s.aliases]) sub.push(`        case ${quote(`${node.path}|${name}`)}\n            echo ${quote(s.name)}`);
    for (const o of node.options) if (o.takesValue) for (const f of o.flags) valued.push(quote(`${node.path}|${f}`));
  }
  const through = nodes.filter((n) => n.passesThrough).map((n) => quote(n.path));
  const lines: string[] = [];
  for (const node of nodes) {
    const when = quote(`__agent_vault_at ${quote(node.path)}`);
    for (const s of node.subcommands) lines.push(`complete -c agent-vault -f -n ${when} -a ${quote(s.name)} -d ${quote(oneLine(s.description))}`);
    for (const o of node.options) {
      const parts = o.flags.map((f) => (f.startsWith("--") ? `-l ${quote(f.slice(2))}` : `-s ${quote(f.slice(1))}`));
      lines.push(`complete -c agent-vault -n ${when} ${parts.join(" ")}${o.takesValue ? " -r" : ""} -d ${quote(oneLine(o.description))}`);
    }
  }
  return `# agent-vault completion for fish. Load it with:  agent-vault completion fish | source
function __agent_vault_sub
    switch "$argv[1]|$argv[2]"
${sub.join("\n")}
    end
end
function __agent_vault_path
    set -l path ''
    set -l state words
    for w in (commandline -opc)[2..-1]
        if test $state = value
            set state words
            continue
        end
        if test $state = command
            echo '<command>'
            return
        end
        switch $w
            case --
                switch $path
                    case ${through.length > 0 ? through.join(" ") : "''"}
                        set state command
                end
            case '--*=*'
            case '-*'
                switch "$path|$w"
                    case ${valued.length > 0 ? valued.join(" ") : "''"}
                        set state value
                end
            case '*'
                set -l name (__agent_vault_sub "$path" "$w")
                if test -n "$name"
                    if test -z "$path"
                        set path $name
                    else
                        set path "$path $name"
                    end
                end
        end
    end
    if test $state = command
        echo '<command>'
    else
        echo $path
    end
end
function __agent_vault_at
    set -l here (__agent_vault_path)
    test "x$here" = "x$argv[1]"
end
complete -c agent-vault -f
${lines.join("\n")}
complete -c agent-vault -n '__agent_vault_at "<command>"' -a '(__fish_complete_command)'
`;
}

export const SHELLS = { bash: bashScript, zsh: zshScript, fish: fishScript } as const;

export function completionScript(program: Command, shell: string): string {
  const generate = SHELLS[shell as keyof typeof SHELLS];
  if (!generate) throw new AgentVaultError("usage", `no completion for "${shell}": choose bash, zsh or fish`);
  return generate(completionTree(program));
}

export function registerCompletion(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script: bash, zsh or fish")
    .argument("<shell>", "bash, zsh or fish")
    .addHelpText(
      "after",
      "\nLoad it now:        source <(agent-vault completion bash)     # zsh: the same with zsh\n                    agent-vault completion fish | source\nLoad it every time: add that line to ~/.bashrc or ~/.zshrc, or for fish:\n                    agent-vault completion fish > ~/.config/fish/completions/agent-vault.fish",
    )
    .action((shell: string) => {
      process.stdout.write(completionScript(program, shell));
    });
}
