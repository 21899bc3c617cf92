// run's terminal hears why its agent's requests fail: the first failure to each host, with the
// proxy's reason in words (`cannot reach example.com: ENOTFOUND`), one line on stderr, never in the
// agent's own output. curl, git and Python show only "CONNECT tunnel failed, response 502" or a
// bare status; the reason is in the request log, which this follows (any server of the data
// directory writes it), so it works whether run serves the proxy itself or a server does.
import { statSync } from "node:fs";
import { followLog, type LogRecord } from "../shared/log-reader.ts";
import { displaySafe } from "../shared/text.ts";

/** Codes that are the agent's own doing, already explained by the answer it got. */
const QUIET = new Set(["client_gone"]);

/** How long the last records may take to reach the file (the request log batches every 20 ms). */
const LAST_WORDS_MS = 120;

/** Follows the log; the returned stop reads what the last requests wrote, then ends. */
export function watchFailures(logPath: string, sessionId: string, write: (line: string) => void, intervalMs = 50): () => Promise<void> {
  const told = new Set<string>();
  let position: { ino: number; offset: number } | null = null;
  try {
    const stat = statSync(logPath);
    position = { ino: stat.ino, offset: stat.size };
  } catch {
    // No log yet: follow it from its start once it exists.
  }
  const onRecord = (record: LogRecord) => {
    if (record.session !== sessionId || !record.error || QUIET.has(record.error)) return;
    const host = record.host;
    if (told.has(host)) return;
    told.add(host);
    const reason = record.reason ? `: ${record.reason}` : "";
    // The host and the reason hold text the agent chose: escaped and cut before the user's terminal.
    write(
      `agent-vault: ${displaySafe(`${record.method} ${host}`.slice(0, 200))} failed, ${record.status} ${displaySafe(record.error)}${displaySafe(reason.slice(0, 300))} (said once per host; \`agent-vault log --errors\` has every one)\n`,
    );
  };
  const stop = new AbortController();
  const following = followLog(logPath, position, onRecord, stop.signal, intervalMs).catch(() => undefined);
  const start = position;
  return async () => {
    // A request that failed just before the agent exited is still worth a line; an agent that sent
    // nothing through the proxy (`run -- true`) is not kept waiting for it.
    if (hasGrown(logPath, start)) await Bun.sleep(LAST_WORDS_MS);
    stop.abort();
    await following;
  };
}

function hasGrown(path: string, since: { ino: number; offset: number } | null): boolean {
  try {
    const stat = statSync(path);
    return since === null || stat.ino !== since.ino || stat.size > since.offset;
  } catch {
    return false;
  }
}
