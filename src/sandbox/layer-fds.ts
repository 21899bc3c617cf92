// The sandbox's layers (src/sandbox/filesystem.ts) bound from descriptors, not paths. The broker
// checks a writable layer's source (a directory, no link on its path) and bwrap would resolve the
// path again when it starts: an agent of the same user running at the same time (another run, in
// the default mode) could swap ~/.codex for a link to ~/.local/bin in between, and a strict run
// would bind that writable (red team, session 8: 5 of 40 runs). So each source is opened first
// (O_PATH, not following a last link), and the descriptor is kept only if the kernel's own name
// for what it opened is the path that was meant; bwrap binds the descriptor (--bind-fd).
import { closeSync, constants, openSync, readlinkSync } from "node:fs";
import { type Layer } from "./filesystem.ts";

/** Linux's O_PATH (the same on x86-64 and arm64): a handle to the directory, nothing read. */
const O_PATH = 0o10000000;

export interface LayerFds {
  /** For bwrapArgs: the child's descriptor a layer is bound from, null to leave it out, undefined for a path. */
  readonly childFd: (layer: Layer) => number | null | undefined;
  /** The descriptors to give the child, in order from `firstChildFd`. */
  readonly fds: readonly number[];
  close(): void;
}

function openChecked(path: string): number | null {
  let fd: number;
  try {
    fd = openSync(path, O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    if (readlinkSync(`/proc/self/fd/${fd}`) === path) return fd;
  } catch {
    // no /proc: not checked, so not used
  }
  closeSync(fd);
  return null;
}

/**
 * Opens every layer's source. A writable one that cannot be opened as meant is left out (the
 * agent loses a writable directory, never gains one); a read-only one falls back to its path
 * (leaving it out would leave the directory writable in the default mode).
 */
export function openLayerFds(layers: readonly Layer[], firstChildFd: number): LayerFds {
  const fds: number[] = [];
  const byLayer = new Map<Layer, number | null>();
  for (const layer of layers) {
    const fd = openChecked(layer.source ?? layer.path);
    if (fd === null) {
      if (layer.mode === "rw") byLayer.set(layer, null);
      continue;
    }
    byLayer.set(layer, firstChildFd + fds.length);
    fds.push(fd);
  }
  let isClosed = false;
  return {
    childFd: (layer) => byLayer.get(layer),
    fds,
    close: () => {
      if (isClosed) return;
      isClosed = true;
      for (const fd of fds) {
        try {
          closeSync(fd);
        } catch {
          // already closed
        }
      }
    },
  };
}
