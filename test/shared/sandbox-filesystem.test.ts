// The sandbox's mount plan (src/sandbox/filesystem.ts, bwrapArgs in src/sandbox/linux.ts), read as
// bwrap's argument list: what comes after what decides what the agent sees, since a later mount
// covers an earlier one. The attacks in test/attacks/sandbox-writes.test.ts run the real thing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { programName, sandboxFilesystem } from "../../src/sandbox/filesystem.ts";
import { openLayerFds } from "../../src/sandbox/layer-fds.ts";
import { bwrapArgs } from "../../src/sandbox/linux.ts";

let root: string;
let home: string;
let project: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "av-fs-plan-"));
  home = join(root, "home");
  project = join(home, "src", "project");
  mkdirSync(project, { recursive: true });
  mkdirSync(join(home, ".aws"));
  writeFileSync(join(home, ".aws", "credentials"), "x");
  mkdirSync(join(home, ".local", "bin"), { recursive: true });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The index of the last mention of `path`: a mount's destination (its flag two before, or one for a tmpfs). */
function mountAt(args: readonly string[], path: string): number {
  return args.lastIndexOf(path);
}

function plan(options: { strict: boolean; readWrite?: string[] }, command: string[] = ["sh"]) {
  const env = { HOME: home, XDG_RUNTIME_DIR: join(root, "run") };
  const filesystem = sandboxFilesystem(env, project, command, { strict: options.strict });
  const user = { readOnly: [], readWrite: options.readWrite ?? [], hidden: [] };
  return { filesystem, args: bwrapArgs({ dataDir: join(root, "data"), shared: [], user, gitMetadata: [], filesystem }, env, 4242) };
}

describe("the sandbox's mount plan", () => {
  test("by default / stays writable, ~/.local/bin is read-only, ~/.aws is hidden", () => {
    const { args } = plan({ strict: false });
    expect(args.slice(args.indexOf("--die-with-parent") + 1, args.indexOf("--die-with-parent") + 4)).toEqual(["--bind", "/", "/"]);
    const bin = join(home, ".local", "bin");
    expect(args[mountAt(args, bin) - 2]).toBe("--ro-bind");
    expect(args[args.indexOf(join(home, ".aws")) - 1]).toBe("--tmpfs");
  });

  test("strict: / read-only, the temporary directories then the home (read-only) then the project (writable), deeper last", () => {
    const { args } = plan({ strict: true });
    expect(args.slice(args.indexOf("--die-with-parent") + 1, args.indexOf("--die-with-parent") + 4)).toEqual(["--ro-bind", "/", "/"]);
    const tmp = mountAt(args, "/tmp");
    const homeAt = mountAt(args, home);
    const projectAt = mountAt(args, project);
    expect(args[tmp - 2]).toBe("--bind");
    expect(args[homeAt - 2]).toBe("--ro-bind");
    expect(args[projectAt - 2]).toBe("--bind");
    expect(tmp).toBeLessThan(homeAt);
    expect(homeAt).toBeLessThan(projectAt);
  });

  test("strict: tmux's socket directory is hidden after /tmp is bound again (else the bind would bring it back)", () => {
    mkdirSync("/tmp/tmux-4242", { recursive: true });
    try {
      const { args } = plan({ strict: true });
      expect(mountAt(args, "/tmp/tmux-4242")).toBeGreaterThan(mountAt(args, "/tmp"));
    } finally {
      rmSync("/tmp/tmux-4242", { recursive: true, force: true });
    }
  });

  test("credential files are hidden after the user's adjustments: --sandbox-rw ~ does not bring ~/.aws back; naming it does", () => {
    const above = plan({ strict: false, readWrite: [home] }).args;
    expect(above.lastIndexOf(join(home, ".aws"))).toBeGreaterThan(above.lastIndexOf(home));
    const named = plan({ strict: false, readWrite: [join(home, ".aws")] }).args;
    const hidesAws = (args: string[]) => args.some((arg, i) => arg === "--tmpfs" && args[i + 1] === join(home, ".aws"));
    expect(hidesAws(above)).toBe(true);
    expect(hidesAws(named)).toBe(false);
  });

  test("the program a command line starts, through npx and env", () => {
    expect(programName(["codex", "exec"])).toBe("codex");
    expect(programName(["npx", "-y", "@openai/codex"])).toBe("codex");
    expect(programName(["env", "FOO=1", "/usr/local/bin/claude", "-p"])).toBe("claude");
    expect(programName([])).toBe("");
  });

  test("layers are bound from descriptors opened as meant: a writable one reached through a link is left out, a read-only one falls back to its path", () => {
    const real = join(root, "real-state");
    mkdirSync(real);
    const linked = join(root, "linked-state");
    symlinkSync(join(home, ".local", "bin"), linked);
    const viaParent = join(root, "via");
    symlinkSync(home, viaParent);
    const layers = [
      { path: real, mode: "rw" as const },
      { path: linked, mode: "rw" as const },
      { path: join(viaParent, ".local", "bin"), mode: "rw" as const },
      { path: linked, mode: "ro" as const },
    ];
    const fds = openLayerFds(layers, 6);
    try {
      expect(layers.map((layer) => fds.childFd(layer))).toEqual([6, null, null, undefined]);
      expect(fds.fds.length).toBe(1);
      const filesystem = { base: "ro" as const, layers, credentials: [], pins: [], shown: [], isStrictHomeWritable: false, isClaudeConfigLost: false };
      const args = bwrapArgs({ dataDir: join(root, "data"), shared: [], user: { readOnly: [], readWrite: [], hidden: [] }, gitMetadata: [], filesystem, layerFd: fds.childFd }, {}, 4242);
      expect(args.join(" ")).toContain(`--bind-fd 6 ${real}`);
      expect(args.join(" ")).not.toContain(`--bind ${linked}`);
      expect(args.join(" ")).toContain(`--ro-bind ${linked} ${linked}`);
    } finally {
      fds.close();
    }
  });
});
