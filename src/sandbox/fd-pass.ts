// Listening sockets handed across processes with SCM_RIGHTS, through libc (bun:ffi): neither Bun
// nor node:net can pass a file descriptor. This is what takes the relays off the sandbox's path
// (src/sandbox/launch.ts): sandbox-init makes the proxy's and the API's listening sockets inside
// the network namespace and hands them out, so the proxy accepts the agent's connections itself.
// Everything here can fail (no libc by these names, another platform, a kernel that refuses):
// callers then fall back to the relays, which need none of it.
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const LIBC_CANDIDATES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

const AF_UNIX = 1;
const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOCK_NONBLOCK = 0o4000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_TYPE = 3;
const SO_PEERCRED = 17;
const SO_ACCEPTCONN = 30;
const SO_DOMAIN = 39;
const SCM_RIGHTS = 1;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const EAGAIN = 11;
const EINTR = 4;

/** At most this many descriptors in one message: we send two (the proxy's and the API's). */
export const MAX_FDS = 4;

const symbols = {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  socketpair: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  sendmsg: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i64 },
  recvmsg: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i64 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

type Libc = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

let libc: Libc | null | undefined;

/** libc's socket calls, or null where they cannot be had (not Linux, not 64-bit, no libc found). */
function load(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  // The msghdr and cmsghdr layouts below are those of 64-bit Linux (glibc and musl alike).
  if (process.platform !== "linux" || (process.arch !== "x64" && process.arch !== "arm64")) return null;
  for (const name of LIBC_CANDIDATES) {
    try {
      libc = dlopen(name, symbols).symbols;
      return libc;
    } catch {
      // try the next name
    }
  }
  return null;
}

export function isFdPassingAvailable(): boolean {
  return load() !== null;
}

function readErrno(c: Libc): number {
  const at = c.__errno_location();
  return at ? read.i32(at, 0) : 0;
}

function must(c: Libc, result: number | bigint, what: string): number {
  if (Number(result) < 0) throw new Error(`${what} failed (errno ${readErrno(c)})`);
  return Number(result);
}

export function closeFd(fd: number): void {
  load()?.close(fd);
}

const F_DUPFD_CLOEXEC = 1030;

/** A second descriptor for the same socket (close-on-exec): closing one leaves the other open. */
export function duplicateFd(fd: number): number {
  const c = load();
  if (!c) throw new Error("fd passing is unavailable");
  return must(c, c.fcntl(fd, F_DUPFD_CLOEXEC, 3), "fcntl F_DUPFD_CLOEXEC");
}

/** A connected pair of Unix stream sockets, close-on-exec (a child gets one only by explicit dup). */
export function socketPair(): [number, number] {
  const c = load();
  if (!c) throw new Error("fd passing is unavailable");
  const fds = new Int32Array(2);
  must(c, c.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ptr(fds)), "socketpair");
  return [fds[0]!, fds[1]!];
}

function encodeInet4(host: string, port: number): Buffer {
  const parts = host.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${host}`);
  const addr = Buffer.alloc(16);
  addr.writeUInt16LE(AF_INET, 0);
  addr.writeUInt16BE(port, 2);
  for (let i = 0; i < 4; i++) addr[4 + i] = parts[i]!;
  return addr;
}

/** A TCP socket listening on host:port (IPv4), made in this process's network namespace. */
export function listenTcp(host: string, port: number): number {
  const c = load();
  if (!c) throw new Error("fd passing is unavailable");
  // Non-blocking: whoever accepts on it (Bun's event loop) expects that.
  const fd = must(c, c.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), "socket");
  try {
    const one = new Int32Array([1]);
    must(c, c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, ptr(one), 4), "setsockopt");
    const addr = encodeInet4(host, port);
    must(c, c.bind(fd, ptr(addr), addr.length), `bind ${host}:${port}`);
    must(c, c.listen(fd, 511), "listen");
    return fd;
  } catch (error) {
    c.close(fd);
    throw error;
  }
}

/**
 * A Unix stream socket connected to `path`. Non-blocking: a local socket connects at once or
 * refuses, and one whose backlog is full (someone flooding it) fails here instead of hanging us.
 */
export function connectUnix(path: string): number {
  const c = load();
  if (!c) throw new Error("fd passing is unavailable");
  const bytes = Buffer.from(path);
  if (bytes.length >= 108) throw new Error("socket path too long");
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(addr, 2);
  const fd = must(c, c.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), "socket");
  if (Number(c.connect(fd, ptr(addr), 2 + bytes.length + 1)) < 0) {
    const code = readErrno(c);
    c.close(fd);
    throw new Error(`connect ${path} failed (errno ${code})`);
  }
  return fd;
}

/** The pid of the process at the other end of a connected Unix socket (SO_PEERCRED). */
export function readPeerPid(fd: number): number {
  const c = load();
  if (!c) throw new Error("fd passing is unavailable");
  const cred = new Int32Array(3);
  const len = new Uint32Array([12]);
  must(c, c.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ptr(cred), ptr(len)), "getsockopt SO_PEERCRED");
  return cred[0]!;
}

function intOption(c: Libc, fd: number, option: number): number {
  const value = new Int32Array(1);
  const len = new Uint32Array([4]);
  must(c, c.getsockopt(fd, SOL_SOCKET, option, ptr(value), ptr(len)), "getsockopt");
  return value[0]!;
}

/**
 * The port of a listening IPv4 TCP socket, or null when `fd` is anything else (a file, a connected
 * socket, a Unix socket): what arrived over SCM_RIGHTS is checked before anything listens on it.
 */
export function readListeningPort(fd: number): number | null {
  const c = load();
  if (!c) return null;
  try {
    if (intOption(c, fd, SO_DOMAIN) !== AF_INET || intOption(c, fd, SO_TYPE) !== SOCK_STREAM || intOption(c, fd, SO_ACCEPTCONN) !== 1) return null;
    const addr = Buffer.alloc(16);
    const len = new Uint32Array([16]);
    must(c, c.getsockname(fd, ptr(addr), ptr(len)), "getsockname");
    return addr.readUInt16BE(2);
  } catch {
    return null;
  }
}

// struct msghdr on 64-bit Linux: name(8) namelen(4+4) iov(8) iovlen(8) control(8) controllen(8) flags(4+4).
const MSGHDR_SIZE = 56;
const CMSG_HEADER = 16;

function messageHeader(iov: BigUint64Array, control: Buffer): Buffer {
  const msg = Buffer.alloc(MSGHDR_SIZE);
  msg.writeBigUInt64LE(BigInt(ptr(iov)), 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(BigInt(ptr(control)), 32);
  msg.writeBigUInt64LE(BigInt(control.length), 40);
  return msg;
}

/** Sends `payload` (non-empty) with `fds` attached (if any), on a connected Unix stream socket. */
export function sendFds(socket: number, fds: readonly number[], payload: Uint8Array): void {
  const c = load();
  if (!c) throw new Error("fd passing is unavailable");
  if (fds.length > MAX_FDS || payload.length === 0) throw new Error("sendFds: bad arguments");
  const data = Buffer.from(payload);
  const iov = new BigUint64Array([BigInt(ptr(data)), BigInt(data.length)]);
  const control = Buffer.alloc(CMSG_HEADER + 8 * Math.ceil((4 * fds.length) / 8));
  control.writeBigUInt64LE(BigInt(CMSG_HEADER + 4 * fds.length), 0);
  control.writeInt32LE(SOL_SOCKET, 8);
  control.writeInt32LE(SCM_RIGHTS, 12);
  fds.forEach((fd, i) => control.writeInt32LE(fd, CMSG_HEADER + 4 * i));
  const msg = messageHeader(iov, control);
  // No descriptors: no control message at all (a cmsghdr with nothing in it is refused).
  if (fds.length === 0) msg.fill(0, 32, 48);
  for (;;) {
    const sent = Number(c.sendmsg(socket, ptr(msg), MSG_NOSIGNAL));
    if (sent === data.length) return;
    if (sent < 0 && readErrno(c) === EINTR) continue;
    throw new Error(sent < 0 ? `sendmsg failed (errno ${readErrno(c)})` : "sendmsg sent part of the message");
  }
}

export type Received = { readonly kind: "message"; readonly fds: number[]; readonly payload: Buffer } | { readonly kind: "again" } | { readonly kind: "closed" };

/**
 * One message from a Unix stream socket without blocking: its bytes and the descriptors that came
 * with it (close-on-exec), "again" when nothing is there yet, "closed" at EOF or on an error.
 */
export function receiveFds(socket: number, maxBytes = 256): Received {
  const c = load();
  if (!c) return { kind: "closed" };
  const data = Buffer.alloc(maxBytes);
  const iov = new BigUint64Array([BigInt(ptr(data)), BigInt(data.length)]);
  const control = Buffer.alloc(CMSG_HEADER + 8 * Math.ceil((4 * MAX_FDS) / 8));
  const msg = messageHeader(iov, control);
  const got = Number(c.recvmsg(socket, ptr(msg), MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (got < 0) {
    const code = readErrno(c);
    return code === EAGAIN || code === EINTR ? { kind: "again" } : { kind: "closed" };
  }
  if (got === 0) return { kind: "closed" };
  const fds: number[] = [];
  const controlLength = Number(msg.readBigUInt64LE(40));
  if (controlLength >= CMSG_HEADER && control.readInt32LE(8) === SOL_SOCKET && control.readInt32LE(12) === SCM_RIGHTS) {
    const cmsgLength = Number(control.readBigUInt64LE(0));
    for (let at = CMSG_HEADER; at + 4 <= Math.min(cmsgLength, controlLength); at += 4) fds.push(control.readInt32LE(at));
  }
  return { kind: "message", fds, payload: data.subarray(0, got) };
}
