// Netguard: where the proxy may connect. A name is resolved once, every address is checked, and
// the checked address is the one dialled, so a DNS answer cannot change between check and connect
// (no rebinding). Loopback, private, link-local, CGNAT, ULA and metadata addresses are refused unless
// AGENT_VAULT_NETWORK_ALLOWLIST names them. AGENT_VAULT_CONNECT_TO is operator intent and bypasses it.
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { AgentVaultError } from "../shared/errors.ts";

const BLOCKED_V4 = [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // CGNAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata (169.254.169.254)
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const;

// IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96) are not listed: BlockList matches plain
// IPv4 addresses against such ranges, which would block the whole IPv4 internet. Mapped addresses
// are unwrapped and checked as IPv4 in isForbiddenAddress instead.
const BLOCKED_V6 = [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7], // ULA
  ["fe80::", 10], // link-local
  ["ff00::", 8],
  ["fd00:ec2::254", 128], // AWS metadata over IPv6
] as const;

export interface ConnectTarget {
  readonly host: string;
  readonly port: number;
}

export interface NetguardOptions {
  readonly allowlist: BlockList;
  /** `host:port` → where to dial instead (curl's --connect-to). */
  readonly connectTo: ReadonlyMap<string, ConnectTarget>;
}

function parseCidr(cidr: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | null {
  const [address = "", prefixText] = cidr.trim().split("/");
  const version = isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return null;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

/** Parses the environment once; a malformed entry is an error that names it. */
export function netguardOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): NetguardOptions {
  const allowlist = new BlockList();
  for (const entry of (env.AGENT_VAULT_NETWORK_ALLOWLIST ?? "").split(",").filter((e) => e.trim() !== "")) {
    const cidr = parseCidr(entry);
    if (!cidr) throw new AgentVaultError("invalid_argument", `AGENT_VAULT_NETWORK_ALLOWLIST: "${entry.trim()}" is not an address or CIDR like 10.0.0.0/8`);
    allowlist.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  const connectTo = new Map<string, ConnectTarget>();
  for (const entry of (env.AGENT_VAULT_CONNECT_TO ?? "").split(",").filter((e) => e.trim() !== "")) {
    const match = /^([^:\s]+):([0-9]{1,5}):([^:\s]+|\[[0-9a-fA-F:]+\]):([0-9]{1,5})$/.exec(entry.trim());
    if (!match) throw new AgentVaultError("invalid_argument", `AGENT_VAULT_CONNECT_TO: "${entry.trim()}" is not HOST1:PORT1:HOST2:PORT2`);
    connectTo.set(`${match[1]!.toLowerCase()}:${Number(match[2])}`, { host: match[3]!.replace(/^\[|\]$/g, ""), port: Number(match[4]) });
  }
  return { allowlist, connectTo };
}

const blocked = new BlockList();
for (const [address, prefix] of BLOCKED_V4) blocked.addSubnet(address, prefix, "ipv4");
for (const [address, prefix] of BLOCKED_V6) blocked.addSubnet(address, prefix, "ipv6");

const embedsIpv4 = new BlockList();
embedsIpv4.addSubnet("::ffff:0:0", 96, "ipv6");
embedsIpv4.addSubnet("64:ff9b::", 96, "ipv6");

/** The IPv4 address in the last 32 bits of an IPv6 address, in either notation. */
function lastIpv4(address: string): string {
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dotted) return dotted[1]!;
  const groups = address.split(":");
  const low = parseInt(groups[groups.length - 1] || "0", 16);
  const high = parseInt(groups[groups.length - 2] || "0", 16);
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join(".");
}

/** True when the proxy must not connect to this address (and the allowlist does not exempt it). */
export function isForbiddenAddress(address: string, allowlist: BlockList): boolean {
  const version = isIP(address);
  if (version === 0) return true;
  const family = version === 4 ? "ipv4" : "ipv6";
  if (allowlist.check(address, family)) return false;
  if (family === "ipv6" && embedsIpv4.check(address, "ipv6")) return isForbiddenAddress(lastIpv4(address), allowlist);
  return blocked.check(address, family);
}

export interface Dial {
  /** The address to connect to: checked, or given by AGENT_VAULT_CONNECT_TO. */
  readonly address: string;
  readonly port: number;
}

/** Resolves `host`, checks every address, and returns the one to dial. Throws forbidden_address. */
export async function resolveDial(host: string, port: number, options: NetguardOptions): Promise<Dial> {
  const override = options.connectTo.get(`${host.toLowerCase()}:${port}`);
  if (override) {
    const address = isIP(override.host) ? override.host : (await lookupAll(override.host))[0]!;
    return { address, port: override.port };
  }
  const addresses = isIP(host) ? [host] : await lookupAll(host);
  const refused = addresses.find((a) => isForbiddenAddress(a, options.allowlist));
  if (refused !== undefined) {
    throw new AgentVaultError("forbidden_address", `${host} resolves to ${refused}, a private or reserved address`);
  }
  return { address: addresses[0]!, port };
}

async function lookupAll(host: string): Promise<string[]> {
  try {
    const results = await lookup(host, { all: true, verbatim: true });
    if (results.length === 0) throw new Error("no addresses");
    return results.map((r) => r.address);
  } catch {
    throw new AgentVaultError("upstream_error", `cannot resolve ${host}`);
  }
}
