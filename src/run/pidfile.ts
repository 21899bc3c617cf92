// server.pid: where this data directory's server says it listens. Anyone of the user can write
// it, so it is only a hint: run/server-check.ts makes whatever answers there prove itself.
import { rmSync } from "node:fs";
import { z } from "zod";
import { readFileNoFollow, writeFileAtomic } from "../shared/files.ts";
import { type HomePaths } from "../shared/paths.ts";

const PidFileSchema = z.object({ pid: z.number().int(), host: z.string(), api_port: z.number().int(), mitm_port: z.number().int(), started_at: z.string() }).strict();
export type PidFile = z.infer<typeof PidFileSchema>;

export function writePidFile(paths: HomePaths, served: { readonly host: string; readonly apiPort: number; readonly mitmPort: number }): void {
  const record: PidFile = { pid: process.pid, host: served.host, api_port: served.apiPort, mitm_port: served.mitmPort, started_at: new Date().toISOString() };
  writeFileAtomic(paths.pidFile, Buffer.from(`${JSON.stringify(record)}\n`));
}

export function removePidFile(paths: HomePaths): void {
  try {
    const record = readPidFile(paths);
    if (record === null || record.pid === process.pid) rmSync(paths.pidFile, { force: true });
  } catch {
    // nothing to remove
  }
}

export function readPidFile(paths: HomePaths): PidFile | null {
  try {
    return PidFileSchema.parse(JSON.parse(readFileNoFollow(paths.pidFile)?.toString("utf8") ?? ""));
  } catch {
    return null;
  }
}
