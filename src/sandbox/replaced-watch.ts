// Bind mounts hold on to inodes. When something outside the sandbox renames a new file over one
// that is hidden or read-only inside (`git credential-store` after a login, `git config` rewriting
// .git/config, `docker login`, `sed -i`, an editor's save), the sandbox sees the new file as the
// host has it: a credential saved that way is readable from then on, a startup file or git config
// saved that way is writable (red team, session 8). The mount cannot be put back from outside, so
// `run` watches those paths while the command runs and says so at once, once per path.
import { lstatSync } from "node:fs";
import { displaySafe } from "../shared/text.ts";

const WATCH_MS = 1_000;

export interface WatchedPath {
  readonly path: string;
  /** What the agent could do with it once replaced. */
  readonly kind: "hidden" | "read-only";
}

function identity(path: string): string | null {
  try {
    const stat = lstatSync(path);
    return `${stat.dev}:${stat.ino}`;
  } catch {
    return null;
  }
}

/** Starts watching; the returned function stops it. Paths absent at the start are not watched. */
export function watchReplaced(paths: readonly WatchedPath[], notice: (line: string) => void): () => void {
  const watched = paths.map((entry) => ({ ...entry, before: identity(entry.path) })).filter((entry) => entry.before !== null);
  if (watched.length === 0) return () => undefined;
  const said = new Set<string>();
  const timer = setInterval(() => {
    for (const entry of watched) {
      if (said.has(entry.path) || identity(entry.path) === entry.before) continue;
      said.add(entry.path);
      const what =
        entry.kind === "hidden"
          ? "the sandbox no longer hides the new file from the agent: end the run (Ctrl-C) if it holds a secret"
          : "the agent can now write the new file: check it before you use it, or end the run (Ctrl-C)";
      notice(`agent-vault: ${displaySafe(entry.path)} was replaced outside the sandbox during the run (saved by renaming a new file over it); ${what}\n`);
    }
  }, WATCH_MS);
  timer.unref();
  return () => clearInterval(timer);
}
