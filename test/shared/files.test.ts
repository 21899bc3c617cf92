import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { appendPrivate, checkDataDirectory, ensureDataDirectory, readFileNoFollow, writeFileAtomic } from "../../src/shared/files.ts";

const root = mkdtempSync(join(tmpdir(), "av-files-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A fresh directory and a target file outside it holding a canary. */
function setup(): { dir: string; target: string; canary: string } {
  const dir = join(root, `d${n++}`);
  mkdirSync(dir, { mode: 0o700 });
  const target = join(root, `target-${n}`);
  const canary = `canary ${n}\n`;
  writeFileSync(target, canary);
  return { dir, target, canary };
}

describe("files in the data directory", () => {
  test("writeFileAtomic replaces a symlink at the target instead of writing through it, with the exact mode", () => {
    const { dir, target, canary } = setup();
    symlinkSync(target, join(dir, "server.pid"));
    writeFileAtomic(join(dir, "server.pid"), Buffer.from("mine"));
    expect(readFileSync(target, "utf8")).toBe(canary);
    expect(lstatSync(join(dir, "server.pid")).isFile()).toBe(true);
    expect(lstatSync(join(dir, "server.pid")).mode & 0o777).toBe(0o600);
    writeFileAtomic(join(dir, "ca.pem"), Buffer.from("cert"), 0o644);
    expect(lstatSync(join(dir, "ca.pem")).mode & 0o777).toBe(0o644);
  });

  test.each(["symlink", "hard link", "fifo"])("appendPrivate replaces a planted %s and appends to a file of its own", (kind) => {
    const { dir, target, canary } = setup();
    const log = join(dir, "requests.log");
    if (kind === "symlink") symlinkSync(target, log);
    if (kind === "hard link") linkSync(target, log);
    if (kind === "fifo") execFileSync("mkfifo", [log]);
    appendPrivate(log, "line\n");
    appendPrivate(log, "line\n");
    expect(readFileSync(target, "utf8")).toBe(canary);
    expect(readFileSync(log, "utf8")).toBe("line\nline\n");
    expect(lstatSync(log).nlink).toBe(1);
    expect(lstatSync(log).mode & 0o777).toBe(0o600);
  });

  test("readFileNoFollow: a symlink or a FIFO is an io_error, missing is null", () => {
    const { dir, target } = setup();
    symlinkSync(target, join(dir, "vault.av"));
    expect(() => readFileNoFollow(join(dir, "vault.av"))).toThrow(expect.objectContaining({ code: "io_error" }));
    execFileSync("mkfifo", [join(dir, "fifo")]);
    expect(() => readFileNoFollow(join(dir, "fifo"))).toThrow(/not a regular file/);
    expect(readFileNoFollow(join(dir, "missing"))).toBeNull();
  });

  test("a data directory that is a symlink or writable by others is refused; a readable one is tightened", () => {
    const { dir } = setup();
    const link = join(root, `link-${n}`);
    symlinkSync(dir, link);
    expect(() => checkDataDirectory(link)).toThrow(/is a symbolic link/);
    expect(() => ensureDataDirectory(link)).toThrow(/is a symbolic link/);
    chmodSync(dir, 0o777);
    expect(() => checkDataDirectory(dir)).toThrow(/writable by group or others/);
    chmodSync(dir, 0o755);
    ensureDataDirectory(dir);
    expect(lstatSync(dir).mode & 0o777).toBe(0o700);
    ensureDataDirectory(join(root, "new", "home"));
    expect(lstatSync(join(root, "new", "home")).mode & 0o777).toBe(0o700);
  });
});
