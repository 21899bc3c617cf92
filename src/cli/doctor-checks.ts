// The checks `agent-vault doctor` runs. Each looks at one thing a working setup needs, and says
// what it found in one line and, when that is wrong, the command that fixes it. Checks only read:
// doctor changes nothing (the fixes are for the user to run). Files of the data directory are read
// without following links, since the agent can plant them.
import { spawnSync } from "node:child_process";
import { lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import { bundleHolds, type CaInfo, inspectCa, pemCertificates, readPemFile } from "../proxy/ca-inspect.ts";
import { systemRootsBeyond } from "../net/system-roots.ts";
import { CA_BUNDLE_VARIABLES } from "../run/env.ts";
import { findBwrap, NAMESPACE_ARGS } from "../sandbox/linux.ts";
import { NODE_PRELOAD_SOURCE } from "../sandbox/node-preload.ts";
import { type HomePaths } from "../shared/paths.ts";
import { lastRecords, readLog } from "../shared/log-reader.ts";
import { type Unlocked } from "./unlock-optional.ts";

export type CheckStatus = "ok" | "fail" | "skip";

export interface CheckResult {
  readonly id: string;
  readonly title: string;
  readonly status: CheckStatus;
  readonly summary: string;
  readonly fix?: string;
}

export interface DoctorContext {
  readonly paths: HomePaths;
  readonly unlocked: Unlocked;
  readonly env: NodeJS.ProcessEnv;
  readonly now: number;
}

const ok = (id: string, title: string, summary: string): CheckResult => ({ id, title, status: "ok", summary });
const fail = (id: string, title: string, summary: string, fix: string): CheckResult => ({ id, title, status: "fail", summary, fix });
const skip = (id: string, title: string, summary: string): CheckResult => ({ id, title, status: "skip", summary });

const isRoot = () => process.getuid?.() === 0;
const myUid = () => process.getuid?.() ?? -1;
const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, "0");

export function checkDataDirectory({ paths }: DoctorContext): CheckResult {
  const title = "data directory";
  let stat;
  try {
    stat = lstatSync(paths.home);
  } catch {
    return fail("data_directory", title, `${paths.home} does not exist`, "agent-vault init");
  }
  if (stat.isSymbolicLink())
    return fail("data_directory", title, `${paths.home} is a symbolic link (agent-vault refuses it)`, "set AGENT_VAULT_HOME to the directory it points to, after checking it is yours");
  if (!stat.isDirectory()) return fail("data_directory", title, `${paths.home} is not a directory`, `move it away, then: agent-vault init`);
  if (stat.uid !== myUid() && !isRoot())
    return fail("data_directory", title, `${paths.home} belongs to uid ${stat.uid}, not to you`, "use a directory of your own: AGENT_VAULT_HOME=... agent-vault init");
  if ((stat.mode & 0o077) !== 0) return fail("data_directory", title, `${paths.home} is ${octal(stat.mode)}: other users can look into it`, `chmod 700 ${paths.home}`);
  return ok("data_directory", title, `${paths.home} is 0700 and yours`);
}

/** Private files must be 0600, regular, one link, ours; the public ones (CA, bundle, preload) not writable by others. */
export function checkFileModes({ paths }: DoctorContext): CheckResult {
  const title = "file permissions";
  const privateFiles = [paths.stateFile, paths.keyFile, paths.requestLog, `${paths.requestLog}.1`, paths.pidFile, join(paths.home, "server.log")];
  const publicFiles = [paths.caCert, paths.caBundle, join(paths.home, "node-preload.cjs")];
  const problems: string[] = [];
  const chmod600: string[] = [];
  const remove: string[] = [];
  let seen = 0;
  for (const path of [...privateFiles, ...publicFiles]) {
    let stat;
    try {
      stat = lstatSync(path);
    } catch {
      continue;
    }
    seen++;
    const name = path.slice(paths.home.length + 1);
    if (stat.isSymbolicLink() || !stat.isFile() || stat.nlink !== 1) {
      problems.push(`${name} is ${stat.isSymbolicLink() ? "a symbolic link" : stat.isFile() ? "a hard link" : "not a regular file"}`);
      remove.push(path);
      continue;
    }
    if (stat.uid !== myUid() && !isRoot()) problems.push(`${name} belongs to uid ${stat.uid}`);
    const isPrivate = privateFiles.includes(path);
    if (isPrivate && (stat.mode & 0o077) !== 0) {
      problems.push(`${name} is ${octal(stat.mode)}, not 0600`);
      chmod600.push(path);
    } else if (!isPrivate && (stat.mode & 0o022) !== 0) {
      problems.push(`${name} is ${octal(stat.mode)}: others can write it`);
      chmod600.push(path);
    }
  }
  if (seen === 0) return skip("file_modes", title, "no files yet");
  if (problems.length === 0) return ok("file_modes", title, `${seen} files: private ones 0600, none writable by others`);
  const fixes = [chmod600.length > 0 ? `chmod go-rwx ${chmod600.join(" ")}` : "", remove.length > 0 ? `rm ${remove.join(" ")} (agent-vault writes them again)` : ""].filter(Boolean);
  return fail("file_modes", title, problems.join("; "), fixes.join("; ") || "chown them back to yourself");
}

export function checkVault({ unlocked }: DoctorContext): CheckResult {
  const title = "vault";
  switch (unlocked.kind) {
    case "open": {
      const body = unlocked.store.read();
      return ok(
        "vault",
        title,
        `opens: ${body.vaults.length} vault${body.vaults.length === 1 ? "" : "s"}, current "${body.current_vault}"${unlocked.store.hasPassword ? "" : " (no master password: protects nothing from your own processes)"}`,
      );
    }
    case "not_initialized":
      return fail("vault", title, "no vault in the data directory", "agent-vault init");
    case "locked":
      return skip("vault", title, "not opened: the master password is needed (--password-stdin or AGENT_VAULT_MASTER_PASSWORD)");
    case "failed":
      return fail("vault", title, unlocked.error.message, unlocked.error.hint ?? "restore vault.av from a backup");
  }
}

const CA_FIX = "agent-vault ca path   (writes ca.pem and ca-bundle.pem again from the vault)";

/** Our CA: from the vault when it is open (the truth), else from ca.pem. */
function ourCa(context: DoctorContext): { info: CaInfo | null; error: string | null } {
  try {
    return { info: inspectCa(context.paths.caCert), error: null };
  } catch (error) {
    return { info: null, error: (error as Error).message.split("\n")[0] ?? "unreadable" };
  }
}

function vaultCaDer(context: DoctorContext): Buffer | null {
  if (context.unlocked.kind !== "open") return null;
  const pem = context.unlocked.store.read().ca?.cert_pem;
  return pem ? (pemCertificates(pem)[0] ?? null) : null;
}

export function checkCa(context: DoctorContext): CheckResult {
  const title = "CA certificate";
  const { info, error } = ourCa(context);
  if (error !== null) return fail("ca", title, `ca.pem does not parse as a certificate (${error})`, CA_FIX);
  if (!info) return fail("ca", title, `${context.paths.caCert} is missing`, CA_FIX);
  const vaultDer = vaultCaDer(context);
  if (vaultDer && !vaultDer.equals(info.der)) return fail("ca", title, "ca.pem is not the CA the vault holds (it was replaced)", CA_FIX);
  if (!info.isCa) return fail("ca", title, "ca.pem is not a CA certificate", CA_FIX);
  if (info.notBefore.getTime() > context.now)
    return fail("ca", title, `ca.pem is valid only from ${info.notBefore.toISOString()}: is the clock behind?`, "set the clock right: timedatectl set-ntp true");
  if (info.notAfter.getTime() <= context.now)
    return fail(
      "ca",
      title,
      `the CA expired on ${info.notAfter.toISOString().slice(0, 10)}`,
      "make a new data directory (agent-vault init with another AGENT_VAULT_HOME) and move your credentials over",
    );
  const days = Math.floor((info.notAfter.getTime() - context.now) / 86_400_000);
  return ok("ca", title, `SHA-256 ${info.sha256.slice(0, 23)}…, valid ${days} more days`);
}

export function checkBundle(context: DoctorContext): CheckResult {
  const title = "CA bundle";
  let text: string | null;
  try {
    text = readPemFile(context.paths.caBundle);
  } catch (error) {
    return fail("ca_bundle", title, (error as Error).message, CA_FIX);
  }
  if (text === null) return fail("ca_bundle", title, `${context.paths.caBundle} is missing`, CA_FIX);
  const count = pemCertificates(text).length;
  const der = vaultCaDer(context) ?? ourCa(context).info?.der ?? null;
  if (!der) return skip("ca_bundle", title, `${count} certificates; no CA to look for in it`);
  if (!bundleHolds(text, der)) return fail("ca_bundle", title, `ca-bundle.pem (${count} certificates) lacks the agent-vault CA: agents would refuse the proxy`, CA_FIX);
  if (count < 2) return fail("ca_bundle", title, "ca-bundle.pem holds our CA but no system roots: hosts tunnelled untouched would not verify", CA_FIX);
  return ok("ca_bundle", title, `${count} certificates: the system roots and the agent-vault CA`);
}

function nodeVersion(env: NodeJS.ProcessEnv): { path: string; version: string } | null {
  const path = Bun.which("node", { PATH: env.PATH ?? "" });
  if (!path) return null;
  const clean: Record<string, string> = { PATH: env.PATH ?? "" };
  const result = spawnSync(path, ["--version"], { env: clean, timeout: 5000, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const version = (result.stdout ?? "").trim();
  return /^v\d+\.\d+\.\d+/.test(version) ? { path, version } : { path, version: "unknown" };
}

export function checkNode(context: DoctorContext): CheckResult {
  const title = "Node proxy support";
  const found = nodeVersion(context.env);
  if (!found) return ok("node", title, "node is not on PATH (needed only by Node agents: codex's npm wrapper, claude, gemini)");
  const match = /^v(\d+)\.(\d+)/.exec(found.version);
  if (!match) return fail("node", title, `${found.path} did not say its version`, "check that node runs: node --version");
  const [major, minor] = [Number(match[1]), Number(match[2])];
  let preload = "";
  try {
    if (readFileSync(join(context.paths.home, "node-preload.cjs"), "utf8") !== NODE_PRELOAD_SOURCE) preload = "; node-preload.cjs differs and is rewritten by the next run";
  } catch {
    // written by the first run
  }
  if (major > 24 || (major === 24 && minor >= 5)) return ok("node", title, `${found.version}: NODE_USE_ENV_PROXY (set by run) sends fetch and node:http(s) through the proxy${preload}`);
  if (major >= 18)
    return ok("node", title, `${found.version}: run's preload (NODE_OPTIONS --require node-preload.cjs) sends fetch through the proxy; node:http(s) needs Node 24.5 to honour HTTPS_PROXY${preload}`);
  return fail("node", title, `${found.version} has no fetch for run's preload to route, and ignores HTTPS_PROXY`, "install Node 24.5 or newer (nodejs.org, or your version manager)");
}

/** Variables `run` replaces with its bundle, beyond those run/env.ts lists today. */
function readUserPem(path: string): string | null {
  try {
    if (!statSync(path).isFile()) return null;
    return readFileSync(path, "utf8").slice(0, 16 * 1024 * 1024);
  } catch {
    return null;
  }
}

/**
 * CA variables already set in this environment. `run` replaces each with its bundle (the shipped
 * roots, the system's bundle, and our CA), so one that names extra CAs (a company proxy's) loses them under `run`: a
 * host tunnelled untouched that needs them would fail to verify.
 */
export function checkCaVariables(context: DoctorContext): CheckResult {
  const title = "inherited CA variables";
  const names = CA_BUNDLE_VARIABLES.filter((n) => context.env[n]);
  if (names.length === 0) return ok("ca_variables", title, "none set");
  const ours = vaultCaDer(context) ?? ourCa(context).info?.der ?? null;
  // What run's bundle holds: the shipped roots, the system's own bundle (net/system-roots.ts), ours.
  const roots = [...rootCertificates, ...systemRootsBeyond(rootCertificates)];
  const known = new Set([...roots.flatMap(pemCertificates), ...(ours ? [ours] : [])].map((d) => d.toString("base64")));
  const upstream = context.env.AGENT_VAULT_UPSTREAM_CA ? readUserPem(context.env.AGENT_VAULT_UPSTREAM_CA) : null;
  for (const der of upstream ? pemCertificates(upstream) : []) known.add(der.toString("base64"));
  // Grouped by file: one bundle is often named by many variables.
  const byPath = new Map<string, string[]>();
  for (const name of names) byPath.set(context.env[name]!, [...(byPath.get(context.env[name]!) ?? []), name]);
  const problems: string[] = [];
  const withExtras: string[] = [];
  for (const [path, vars] of byPath) {
    const text = readUserPem(path);
    const who = vars.length > 3 ? `${vars.slice(0, 2).join(", ")} and ${vars.length - 2} more` : vars.join(", ");
    if (text === null) {
      problems.push(`${who} name ${path}, not a readable file`);
      continue;
    }
    const extras = pemCertificates(text).filter((d) => !known.has(d.toString("base64")));
    if (extras.length > 0) {
      problems.push(`${who} name ${path}, with ${extras.length} CA${extras.length === 1 ? "" : "s"} run's bundle lacks`);
      withExtras.push(path);
    }
  }
  if (problems.length === 0) return ok("ca_variables", title, `${names.join(", ")}: system roots${ours ? " or our CA" : ""} only; run replaces ${names.length === 1 ? "it" : "them"} with its bundle`);
  const fix =
    withExtras.length > 0
      ? `run replaces them, so hosts signed by those CAs fail under run; for services, trust them at the proxy: export AGENT_VAULT_UPSTREAM_CA=${withExtras[0]}`
      : `unset ${names.join(" ")}, or point them at bundles that exist`;
  return fail("ca_variables", title, problems.join("; "), fix);
}

export function checkSandbox(context: DoctorContext): CheckResult {
  const title = "sandbox";
  if (process.platform !== "linux") return fail("sandbox", title, `no sandbox on ${process.platform} yet: run needs --no-sandbox`, "run agents with agent-vault run --no-sandbox -- ...");
  const bwrap = findBwrap();
  if (!bwrap) {
    const onPath = Bun.which("bwrap", { PATH: context.env.PATH ?? "" });
    const why = onPath ? `bwrap at ${onPath} is not root-owned in /usr/bin, /usr/local/bin or /bin, so it is not used` : "bubblewrap (bwrap) is not installed";
    return fail("sandbox", title, why, "sudo apt install bubblewrap   (Fedora: sudo dnf install bubblewrap; Arch: sudo pacman -S bubblewrap)");
  }
  const probe = spawnSync(bwrap, [...NAMESPACE_ARGS, "--ro-bind", "/", "/", "--", "/bin/sh", "-c", ":"], { stdio: ["ignore", "ignore", "pipe"], timeout: 10_000, encoding: "utf8" });
  if (probe.status !== 0) {
    const why =
      (probe.stderr ?? "")
        .trim()
        .split("\n")[0]
        ?.replace(/^bwrap: /, "")
        .slice(0, 160) || `bwrap exited ${probe.status}`;
    return fail(
      "sandbox",
      title,
      `${bwrap} cannot make namespaces here (${why})`,
      "allow unprivileged user namespaces: sudo sysctl -w kernel.unprivileged_userns_clone=1 (Debian), or on Ubuntu 24.04+ keep bwrap's AppArmor profile (apparmor_restrict_unprivileged_userns); in a container, run it with user namespaces allowed",
    );
  }
  return ok("sandbox", title, `${bwrap} (root-owned) makes user namespaces`);
}

/** Allowed drift: file systems and the log round to the second, and writers race the clock read. */
const CLOCK_SLACK_MS = 2 * 60_000;

function describeAhead(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  return minutes < 120 ? `${minutes} min` : minutes < 2880 ? `${Math.round(minutes / 60)} h` : `${Math.round(minutes / 1440)} days`;
}

/** A file written "in the future" means the clock went back since: sessions and proposals expire by it. */
export function checkClock(context: DoctorContext): CheckResult {
  const title = "clock";
  let latest: { name: string; ms: number } | null = null;
  let names: string[] = [];
  try {
    names = readdirSync(context.paths.home);
  } catch {
    return skip("clock", title, "no data directory to compare with");
  }
  for (const name of names) {
    try {
      const ms = lstatSync(join(context.paths.home, name)).mtimeMs;
      if (!latest || ms > latest.ms) latest = { name, ms };
    } catch {
      // gone meanwhile
    }
  }
  const lastRecord = lastRecords(readLog(context.paths.requestLog), () => true, 1)[0];
  if (lastRecord && (!latest || Date.parse(lastRecord.time) > latest.ms)) latest = { name: "the last request logged", ms: Date.parse(lastRecord.time) };
  if (latest && latest.ms > context.now + CLOCK_SLACK_MS) {
    return fail(
      "clock",
      title,
      `${latest.name} is dated ${describeAhead(latest.ms - context.now)} ahead of now (${new Date(latest.ms).toISOString()}): the clock went back`,
      "set the clock right (timedatectl set-ntp true); session and proposal expiry go by it",
    );
  }
  return ok("clock", title, `${new Date(context.now).toISOString()}: no file in the data directory is dated later`);
}

export async function checkServerRunning(context: DoctorContext): Promise<CheckResult> {
  const title = "server";
  const serve = await import("../run/serve.ts");
  const record = serve.readPidFile(context.paths);
  if (!record) return ok("server", title, "not running (each run serves its agent itself)");
  if (!serve.isProcessAlive(record.pid)) return ok("server", title, `not running (server.pid names pid ${record.pid}, which is gone; the next server replaces it)`);
  if (context.unlocked.kind !== "open") return skip("server", title, `pid ${record.pid} is named in server.pid; verifying it needs the master password`);
  const { checkServer } = await import("../run/server-check.ts");
  const check = await checkServer(context.unlocked.store, record);
  if (check.kind === "verified") return ok("server", title, `running and verified: pid ${record.pid}, API ${record.host}:${record.api_port}, proxy ${record.host}:${record.mitm_port}`);
  if (check.kind === "absent") return ok("server", title, `not running (nothing listens at ${record.host}:${record.api_port}, named in server.pid)`);
  return fail(
    "server",
    title,
    `pid ${record.pid} at ${record.host}:${record.api_port} did not prove it is this vault's server (${check.why})`,
    `if no agent-vault server should run: rm ${context.paths.pidFile}; run and server stop refuse to use it meanwhile`,
  );
}

/** In the order they print; ids and titles here too, so a check that throws is still named. */
const CHECKS: readonly (readonly [id: string, title: string, check: (context: DoctorContext) => CheckResult | Promise<CheckResult>])[] = [
  ["data_directory", "data directory", checkDataDirectory],
  ["file_modes", "file permissions", checkFileModes],
  ["vault", "vault", checkVault],
  ["ca", "CA certificate", checkCa],
  ["ca_bundle", "CA bundle", checkBundle],
  ["node", "Node proxy support", checkNode],
  ["ca_variables", "inherited CA variables", checkCaVariables],
  ["sandbox", "sandbox", checkSandbox],
  ["clock", "clock", checkClock],
  ["server", "server", checkServerRunning],
];

export async function runChecks(context: DoctorContext): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const [id, title, check] of CHECKS) {
    try {
      results.push(await check(context));
    } catch (error) {
      results.push(fail(id, title, `the check itself failed: ${(error as Error).message.split("\n")[0]}`, "report this as a bug in agent-vault"));
    }
  }
  return results;
}
