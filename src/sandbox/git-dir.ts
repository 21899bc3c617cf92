// Which git directories a working directory's git would use, found the way git finds them (setup.c)
// but without running git: in a repository the agent could write, git itself could run what the
// config names. Every candidate on the way up is kept, not only the first git would stop at: an
// agent can make the nearer one invalid so that git walks on, and judging more costs only a stat.
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export interface GitRepo {
  /** The directory git runs hooks from and resolves relative paths against. */
  readonly workTree: string;
  /** The `.git` directory, or the directory a `.git` file's `gitdir:` names. */
  readonly gitDir: string;
  /** Where the hooks and the shared config are: the `commondir` a linked worktree names, else gitDir. */
  readonly commonDir: string;
  /** A `.git` file (a linked worktree's pointer), or null for a directory. */
  readonly pointer: string | null;
}

/** git reads a `.git` file up to this size; more than this is not a pointer git follows either. */
const MAX_METADATA_BYTES = 1024 * 1024;

/**
 * A small file's text, or null when it is absent, not a regular file or too large. Opened
 * non-blocking and checked on the open descriptor: the agent may have put a FIFO at the path.
 */
export function readSmallFile(path: string, limit = MAX_METADATA_BYTES): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > limit) return null;
    const buffer = Buffer.alloc(stat.size);
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(fd, buffer, read, buffer.length - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read).toString("utf8");
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** A path stored in a git metadata file, as git reads it: trailing line breaks dropped, cut at a NUL. */
function metadataPath(text: string): string | null {
  const path = text.replace(/[\r\n]+$/, "").split("\0")[0] ?? "";
  return path === "" ? null : path;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** git's is_git_directory, loosely: HEAD with objects/ and refs/ beside it. */
function isGitDirectory(dir: string): boolean {
  try {
    statSync(join(dir, "HEAD"));
  } catch {
    return false;
  }
  return isDirectory(join(dir, "objects")) && isDirectory(join(dir, "refs"));
}

function withCommonDir(workTree: string, gitDir: string, pointer: string | null): GitRepo {
  const common = metadataPath(readSmallFile(join(gitDir, "commondir")) ?? "");
  return { workTree, gitDir, commonDir: common ? resolve(gitDir, common) : gitDir, pointer };
}

/** The git directories found walking up from `cwd`, nearest first. */
export function findGitRepos(cwd: string): GitRepo[] {
  const repos: GitRepo[] = [];
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const dotGit = join(dir, ".git");
    if (isDirectory(dotGit)) {
      repos.push(withCommonDir(dir, dotGit, null));
    } else {
      const text = readSmallFile(dotGit);
      const target = text?.startsWith("gitdir: ") ? metadataPath(text.slice("gitdir: ".length)) : null;
      if (target) repos.push(withCommonDir(dir, resolve(dir, target), dotGit));
    }
    // A bare repository: the directory itself (git checks it after its `.git`).
    if (isGitDirectory(dir)) repos.push(withCommonDir(dir, dir, null));
    if (dir === dirname(dir)) return repos;
  }
}

/**
 * What inside a repository's git directories turns a write into a program the user's git runs
 * later: the hooks, the config, and the files that send git to another directory's hooks and
 * config (a worktree's `.git` pointer, `commondir`, `config.worktree`). Only those that exist:
 * bwrap would create a missing mount point on the real filesystem.
 */
export function gitMetadataPaths(repo: GitRepo): string[] {
  const paths = [join(repo.commonDir, "hooks"), join(repo.commonDir, "config"), join(repo.gitDir, "commondir"), join(repo.gitDir, "config.worktree")];
  if (repo.pointer) paths.push(repo.pointer);
  return paths.filter((path) => {
    try {
      statSync(path);
      return true;
    } catch {
      return false;
    }
  });
}
