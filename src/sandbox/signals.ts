// Which signals `run` and the sandbox's init pass on, and how a signal death becomes an exit code.
// A terminal delivers Ctrl-C and Ctrl-\\ to the whole foreground process group, the command
// included: forwarding those again would make an agent see each twice, so they are forwarded only
// when there is no terminal (then they can only have been sent to us).
export const FORWARDED_SIGNALS = ["SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2"] as const;
export const TERMINAL_SIGNALS = ["SIGINT", "SIGQUIT"] as const;

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

/** The shell's convention: a command killed by signal N exits 128 + N. */
export function exitStatusOf(code: number, signalCode: NodeJS.Signals | number | null | undefined): number {
  if (typeof signalCode === "number") return 128 + signalCode;
  if (signalCode) return 128 + (SIGNAL_NUMBERS[signalCode] ?? 1);
  return code;
}
