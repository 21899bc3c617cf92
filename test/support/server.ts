// A foreground `agent-vault server` from the compiled binary for end-to-end tests, found through
// its pidfile, and stopped by the cleanup it registers.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cleanEnv, type TempHome } from "./binary.ts";
import { type Live, spawnLive, waitUntil } from "./process.ts";

export interface Server {
  readonly apiPort: number;
  readonly mitmPort: number;
  readonly live: Live;
  stop(): Promise<void>;
}

export async function startServer(home: TempHome, env: Record<string, string>, cleanups: (() => Promise<void> | void)[]): Promise<Server> {
  const live = spawnLive(home.argv(["server", "--port", "0", "--mitm-port", "0"]), cleanEnv({ ...home.env, ...env }), "ignore");
  const stop = async () => {
    if (live.proc.exitCode === null) live.proc.kill("SIGTERM");
    await live.proc.exited;
  };
  cleanups.push(stop);
  const record = await waitUntil(
    "the server's pidfile",
    () => {
      if (live.proc.exitCode !== null) throw new Error(`the server exited (${live.proc.exitCode}): ${live.stderr}`);
      try {
        const parsed = JSON.parse(readFileSync(join(home.dir, "server.pid"), "utf8")) as { pid: number; api_port: number; mitm_port: number };
        return parsed.pid === live.proc.pid ? parsed : null;
      } catch {
        return null;
      }
    },
    20_000,
  );
  return { apiPort: record.api_port, mitmPort: record.mitm_port, live, stop };
}
