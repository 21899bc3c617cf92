// Long-running child processes for end-to-end tests (a server, `run` with its agent, the TUI in
// tmux): their output collected as it arrives, and polling for a condition with a deadline.

export interface Live {
  readonly proc: ReturnType<typeof Bun.spawn>;
  stdout: string;
  stderr: string;
}

export function spawnLive(args: readonly string[], env: Record<string, string>, stdin: "pipe" | "ignore"): Live {
  const proc = Bun.spawn([...args], { env, stdin, stdout: "pipe", stderr: "pipe" });
  const live: Live = { proc, stdout: "", stderr: "" };
  const drain = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) live[key] += decoder.decode(chunk, { stream: true });
  };
  void drain(proc.stdout as ReadableStream<Uint8Array>, "stdout");
  void drain(proc.stderr as ReadableStream<Uint8Array>, "stderr");
  return live;
}

export async function waitUntil<T>(what: string, probe: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(25);
  }
}

/** Runs cleanups newest first; one that fails does not stop the rest. */
export async function runCleanups(cleanups: (() => Promise<void> | void)[]): Promise<void> {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch {
      // keep cleaning
    }
  }
  cleanups.length = 0;
}
