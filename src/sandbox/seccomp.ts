// A seccomp filter for the sandbox (bwrap --seccomp): TIOCSTI and TIOCLINUX ioctls fail with EPERM.
// The agent holds the user's terminal; with TIOCSTI it could push a command into the terminal's
// input, which the user's shell would run after `run` ends, outside the sandbox. Flatpak filters
// the same two. Everything else is allowed. The kernel reads the request as a 32-bit int, so the
// low word is what is compared. Classic BPF over struct seccomp_data {nr, arch, ip, args[6]}.

const AUDIT_ARCH = { x86_64: 0xc000003e, i386: 0x40000003, aarch64: 0xc00000b7 } as const;
const IOCTL = { x86_64: 16, i386: 54, aarch64: 29 } as const;
const X32_SYSCALL_BIT = 0x40000000;
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
const RET_ALLOW = 0x7fff0000;
const RET_EPERM = 0x00050000 | 1;

const LD_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JSET = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET = 0x06; // BPF_RET | BPF_K
const OFFSET = { nr: 0, arch: 4, arg1Low: 24 }; // little-endian: args[1]'s low word

type Insn = { code: number; k: number; jt?: string; jf?: string; label?: string };

/** The program for this machine's architectures, or null where we know none (no filter then). */
export function ttyInjectionFilter(arch: string = process.arch): Uint8Array | null {
  const arches = arch === "x64" ? (["x86_64", "i386"] as const) : arch === "arm64" ? (["aarch64"] as const) : null;
  if (!arches) return null;
  const program: Insn[] = [{ code: LD_ABS, k: OFFSET.arch }];
  for (const a of arches) program.push({ code: JEQ, k: AUDIT_ARCH[a], jt: a });
  program.push({ code: RET, k: RET_ALLOW });
  for (const a of arches) {
    program.push({ code: LD_ABS, k: OFFSET.nr, label: a });
    // x32 system calls (x86_64 with bit 30 set) have their own numbers: refused outright.
    if (a === "x86_64") program.push({ code: JSET, k: X32_SYSCALL_BIT, jt: "deny" });
    program.push({ code: JEQ, k: IOCTL[a], jt: "request", jf: "allow" });
  }
  program.push({ code: LD_ABS, k: OFFSET.arg1Low, label: "request" });
  program.push({ code: JEQ, k: TIOCSTI, jt: "deny" });
  program.push({ code: JEQ, k: TIOCLINUX, jt: "deny" });
  program.push({ code: RET, k: RET_ALLOW, label: "allow" });
  program.push({ code: RET, k: RET_EPERM, label: "deny" });
  const at = new Map(program.flatMap((insn, i) => (insn.label ? [[insn.label, i] as const] : [])));
  const jump = (from: number, label: string | undefined) => {
    if (label === undefined) return 0;
    const offset = at.get(label)! - from - 1;
    if (offset < 0 || offset > 255) throw new Error(`seccomp: bad jump to ${label}`);
    return offset;
  };
  const bytes = new Uint8Array(program.length * 8);
  const view = new DataView(bytes.buffer);
  program.forEach((insn, i) => {
    view.setUint16(i * 8, insn.code, true);
    view.setUint8(i * 8 + 2, jump(i, insn.jt));
    view.setUint8(i * 8 + 3, jump(i, insn.jf));
    view.setUint32(i * 8 + 4, insn.k, true);
  });
  return bytes;
}
