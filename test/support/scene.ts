// The scaffolding most end-to-end and attack test files share: a scratch directory, cleanups that
// run after the file's tests, a record of everything the agent got, and at the end the check that
// no canary is in that record. Homes, upstreams and the attacker's listeners that go with the
// scene's cleanups, and the home most attacks start from: the agent user's data directory with one
// bearer service whose key is the canary.
import { afterAll, expect } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asAgent, giveToAgent, openToAgent } from "./attacker.ts";
import { cleanEnv, type Cli, recordingCli, type TempHome, tempHome } from "./binary.ts";
import { type Live, runCleanups, spawnLive, waitUntil } from "./process.ts";
import { type Handler, startUpstream, type Upstream } from "./upstream.ts";

export type Cleanups = (() => Promise<void> | void)[];

export interface FileScene {
  /** A temporary directory, removed after the file's tests (after the cleanups). */
  readonly scratch: string;
  /** Run newest first after the file's tests. */
  readonly cleanups: Cleanups;
  /** Everything the agent got (stdout, stderr, response bodies), checked against `absent` at the end. */
  readonly outputs: string[];
}

export interface SceneOptions {
  /** Lets the agent user reach the scratch directory (for files its processes read). */
  readonly openToAgent?: boolean;
  /** Values that must be in none of `outputs` once the file's tests are done. */
  readonly absent?: readonly string[];
}

/** Sets up a file's scene; its afterAll runs the cleanups, removes the scratch directory, then checks `absent`. */
export function fileScene(prefix: string, options: SceneOptions = {}): FileScene {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  if (options.openToAgent) openToAgent(scratch);
  const scene: FileScene = { scratch, cleanups: [], outputs: [] };
  afterAll(async () => {
    await runCleanups(scene.cleanups);
    rmSync(scratch, { recursive: true, force: true });
    for (const text of scene.outputs) for (const value of options.absent ?? []) expect(text).not.toContain(value);
  }, 30_000);
  return scene;
}

/** A data directory (tempHome), removed with the scene's cleanups. */
export async function sceneHome(scene: FileScene, options: Parameters<typeof tempHome>[0] = {}): Promise<TempHome> {
  const home = await tempHome(options);
  scene.cleanups.push(() => home.cleanup());
  return home;
}

/** The agent user's data directory (sceneHome with asAgent). */
/**
 * A scratch directory and a fresh home of their own, both removed with `cleanups`, and `setup`,
 * which runs the binary in that home and throws (with its stderr) unless it succeeds: the start of
 * a real agent's end-to-end run (codex, claude).
 */
export async function setupHome(prefix: string, cleanups: Cleanups): Promise<{ scratch: string; home: TempHome; setup: (args: readonly string[], stdin?: string) => Promise<void> }> {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  const home = await tempHome();
  cleanups.push(() => home.cleanup());
  const setup = async (args: readonly string[], stdin?: string) => {
    const r = await home.run(args, stdin === undefined ? {} : { stdin });
    if (r.code !== 0) throw new Error(`agent-vault ${args.join(" ")} failed (exit ${r.code}): ${r.stderr}`);
  };
  return { scratch, home, setup };
}

export function agentHome(scene: FileScene, options: { init?: "password" | "no-password" | false } = {}): Promise<TempHome> {
  return sceneHome(scene, { asAgent: true, ...options });
}

/** A local HTTPS upstream (startUpstream) in a directory of its own under the scratch one, closed with the scene's cleanups. */
export async function sceneUpstream(scene: FileScene, handler: Handler | null = null): Promise<Upstream> {
  const upstream = await startUpstream(mkdtempSync(join(scene.scratch, "u-")));
  scene.cleanups.push(() => upstream.close());
  upstream.handler = handler;
  return upstream;
}

/** Stores `secret` as SVC_KEY and adds the bearer service `svc` on `host` that injects it, through the CLI. */
export async function addBearerService(cli: Cli, secret: string, host: string): Promise<void> {
  await cli.ok(["vault", "credential", "set", "SVC_KEY=-"], secret);
  await cli.ok(["vault", "service", "add", "--name", "svc", "--host", host, "--auth-type", "bearer", "--token-key", "SVC_KEY"]);
}

/** agentHome with the service `svc` (addBearerService), the CLI's output recorded in the scene's outputs. */
export async function agentServiceHome(scene: FileScene, secret: string, host: string, env: () => Record<string, string | undefined>): Promise<TempHome> {
  const home = await agentHome(scene);
  await addBearerService(
    recordingCli(() => home, env, scene.outputs),
    secret,
    host,
  );
  return home;
}

export interface AgentListener {
  readonly live: Live;
  readonly port: number;
  /** The file the listener records what it received into. */
  readonly log: string;
  /** Every byte the listener recorded so far ("" before any). */
  received(): string;
}

/**
 * A listener of the attacker's: a Python script run as the agent user from a directory of its own
 * under the scratch one, as `python3 listener.py LOG ...args`. The script records what it receives
 * into LOG and prints its port on its first line. Killed with the scene's cleanups.
 */
export async function agentListener(scene: Pick<FileScene, "scratch" | "cleanups">, name: string, script: string, args: readonly string[] = []): Promise<AgentListener> {
  const dir = mkdtempSync(join(scene.scratch, `${name}-`));
  const file = join(dir, "listener.py");
  writeFileSync(file, script);
  const log = join(dir, "received.bin");
  giveToAgent(dir);
  const live = spawnLive(asAgent(["/usr/bin/python3", file, log, ...args]), cleanEnv(), "ignore");
  scene.cleanups.push(() => {
    if (live.proc.exitCode === null) live.proc.kill("SIGKILL");
  });
  const port = Number(
    await waitUntil(
      "the attacker's listener",
      () => {
        if (live.proc.exitCode !== null) throw new Error(`the listener exited: ${live.stderr}`);
        return /^(\d+)\n/.exec(live.stdout)?.[1];
      },
      10_000,
    ),
  );
  return {
    live,
    port,
    log,
    received: () => {
      try {
        return readFileSync(log, "latin1");
      } catch {
        return "";
      }
    },
  };
}

/**
 * The spellings of `values` found in `text` (case folded): each raw, the first `base64Chars` of its
 * base64 and its hex. An attack asserts none reached a place the values must not go.
 */
export function leakedForms(text: string, values: readonly string[], base64Chars = 40): string[] {
  const forms = values.flatMap((v) => [v, Buffer.from(v).toString("base64").slice(0, base64Chars), Buffer.from(v).toString("hex")]);
  const folded = text.toLowerCase();
  return forms.filter((f) => folded.includes(f.toLowerCase()));
}
