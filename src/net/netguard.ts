// Netguard: where the proxy may connect. A name is resolved once, every address is checked, and
// the checked address is the one dialled, so a DNS answer cannot change between check and connect
// (no rebinding). Refused unless AGENT_VAULT_NETWORK_ALLOWLIST names them: every range of IANA's
// IPv4 and IPv6 special-purpose registries (loopback, private, link-local, CGNAT, documentation,
// benchmarking, multicast, reserved…), every IPv6 address outside global unicast, and every address
// of this machine's own interfaces (a listener on 0.0.0.0 is reachable at eth0's address, which may
// be public). Hosts are read the way a resolver reads them: `2130706433`, `0177.0.0.1`, `0x7f.1`
// and `127.1` are 127.0.0.1 and judged as such. AGENT_VAULT_CONNECT_TO is operator intent and
// bypasses the check.
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { AgentVaultError } from "../shared/errors.ts";

// IANA IPv4 Special-Purpose Address Registry, plus multicast and 240/4 (which holds 255.255.255.255).
// Globally reachable entries of the registry (AS112, AMT, 192.0.0.9…) are refused too: no API lives
// there, and one rule is easier to trust than a list of exceptions.
const BLOCKED_V4 = [
  ["0.0.0.0", 8], // "this network"; connecting to 0.0.0.0 reaches loopback on Linux
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // CGNAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata (169.254.169.254)
  ["172.16.0.0", 12],
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // TEST-NET-1
  ["192.31.196.0", 24], // AS112-v4
  ["192.52.193.0", 24], // AMT
  ["192.88.99.0", 24], // deprecated 6to4 relay anycast
  ["192.168.0.0", 16],
  ["192.175.48.0", 24], // direct delegation AS112
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // TEST-NET-2
  ["203.0.113.0", 24], // TEST-NET-3
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, and the limited broadcast 255.255.255.255
] as const;

// IPv6: only global unicast (2000::/3) may be dialled at all, which refuses ::, ::1, ::/96,
// 100::/64, 5f00::/16, fc00::/7, fe80::/10, fec0::/10, ff00::/8 and whatever is reserved later.
// Inside 2000::/3, the registry's special ranges. IPv4-mapped (::ffff:0:0/96), NAT64
// (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address and are judged by it.
const BLOCKED_V6 = [
  ["2001::", 23], // IETF protocol assignments: Teredo, benchmarking, ORCHID, AS112-v6…
  ["2001:db8::", 32], // documentation
  ["2620:4f:8000::", 48], // direct delegation AS112
  ["3fff::", 20], // documentation
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
  if (version === 0 || address.includes("%")) return null;
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

// BlockList matches a plain IPv4 address against IPv6 ranges that embed IPv4 (and the reverse), so
// each list below only ever sees one family.
const blockedV4 = new BlockList();
for (const [address, prefix] of BLOCKED_V4) blockedV4.addSubnet(address, prefix, "ipv4");
const blockedV6 = new BlockList();
for (const [address, prefix] of BLOCKED_V6) blockedV6.addSubnet(address, prefix, "ipv6");
const globalUnicast = new BlockList();
globalUnicast.addSubnet("2000::", 3, "ipv6");
const embedsIpv4Last32 = new BlockList();
embedsIpv4Last32.addSubnet("::ffff:0:0", 96, "ipv6"); // IPv4-mapped
embedsIpv4Last32.addSubnet("64:ff9b::", 96, "ipv6"); // NAT64 well-known prefix
const sixToFour = new BlockList();
sixToFour.addSubnet("2002::", 16, "ipv6");
// 64:ff9b:1::/48 is NAT64 for local use, with a prefix length only the local network knows, so
// where its IPv4 address sits is unknown: refused whole.
const localNat64 = new BlockList();
localNat64.addSubnet("64:ff9b:1::", 48, "ipv6");

// The machine's own addresses, re-read at most once a second: interfaces come and go (DHCP, VPNs),
// and reading them costs ~45 µs, too much for every keep-alive request.
const OWN_ADDRESSES_TTL_MS = 1000;
let own: { readonly at: number; readonly list: BlockList } | null = null;

function ownAddresses(now = Date.now()): BlockList {
  if (own && now - own.at < OWN_ADDRESSES_TTL_MS) return own.list;
  const list = new BlockList();
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      const address = entry.address.split("%")[0]!;
      if (isIP(address) !== 0) list.addAddress(address, isIP(address) === 4 ? "ipv4" : "ipv6");
    }
  }
  own = { at: now, list };
  return list;
}

/** The 16 bytes of an IPv6 address (no zone id). */
function ipv6Bytes(address: string): number[] {
  let text = address;
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    tail.push(...dotted[1]!.split(".").map(Number));
    text = `${text.slice(0, -dotted[1]!.length)}0:0`;
  }
  const [head = "", rest] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = rest === undefined || rest === "" ? [] : rest.split(":");
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right].map((g) => parseInt(g, 16));
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

function ipv4At(bytes: readonly number[], offset: number): string {
  return bytes.slice(offset, offset + 4).join(".");
}

/** True when the proxy must not connect to this address (and the allowlist does not exempt it). */
export function isForbiddenAddress(address: string, allowlist: BlockList): boolean {
  // A zone id (fe80::1%eth0) picks an interface: only link-local needs one, and that is refused.
  if (address.includes("%")) return true;
  const version = isIP(address);
  if (version === 0) return true;
  const family = version === 4 ? "ipv4" : "ipv6";
  if (allowlist.check(address, family)) return false;
  if (ownAddresses().check(address, family)) return true;
  if (family === "ipv4") return blockedV4.check(address, "ipv4");
  if (embedsIpv4Last32.check(address, "ipv6")) return isForbiddenAddress(ipv4At(ipv6Bytes(address), 12), allowlist);
  if (sixToFour.check(address, "ipv6")) return isForbiddenAddress(ipv4At(ipv6Bytes(address), 2), allowlist);
  if (localNat64.check(address, "ipv6")) return true;
  return !globalUnicast.check(address, "ipv6") || blockedV6.check(address, "ipv6");
}

/**
 * How a host names its target: an IP address (in any spelling a resolver or a URL parser accepts,
 * turned into the one it means), or a DNS name to resolve. Throws forbidden_address for spellings
 * that mean no one address (zone ids, numeric forms out of range).
 */
export function parseHostAddress(input: string): { readonly address: string } | { readonly name: string } {
  const host = input
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (host.includes("%")) throw new AgentVaultError("forbidden_address", `${clip(input)}: IPv6 zone ids are not allowed`);
  if (isIP(host) !== 0) return { address: host };
  const ipv4 = parseLegacyIpv4(host);
  if (ipv4 === undefined) return { name: host };
  if (ipv4 === null) throw new AgentVaultError("forbidden_address", `${clip(input)} is neither a host name nor a valid IPv4 address`);
  return { address: ipv4 };
}

/**
 * inet_aton's and the URL standard's IPv4 forms: 1 to 4 parts, each decimal, octal (leading 0) or
 * hex (0x), the last filling the remaining bytes (`127.1`, `2130706433`). A host whose last label
 * is numeric is an address or nothing (as in the URL standard): undefined means "a name".
 */
function parseLegacyIpv4(host: string): string | null | undefined {
  const labels = host.endsWith(".") ? host.slice(0, -1).split(".") : host.split(".");
  if (!/^(0x[0-9a-f]*|[0-9]+)$/.test(labels[labels.length - 1] ?? "")) return undefined;
  if (labels.length > 4) return null;
  const parts: number[] = [];
  for (const label of labels) {
    let value: number;
    if (/^0x[0-9a-f]*$/.test(label)) value = label.length === 2 ? 0 : parseInt(label.slice(2), 16);
    else if (/^0[0-7]+$/.test(label)) value = parseInt(label.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(label)) value = Number(label);
    else return null;
    if (!Number.isSafeInteger(value)) return null;
    parts.push(value);
  }
  const last = parts.pop()!;
  if (parts.some((p) => p > 255) || last >= 256 ** (4 - parts.length)) return null;
  const value = parts.reduce((sum, p, i) => sum + p * 256 ** (3 - i), 0) + last;
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff].join(".");
}

function clip(text: string): string {
  return JSON.stringify(text.slice(0, 100));
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
  const parsed = parseHostAddress(host);
  const addresses = "address" in parsed ? [parsed.address] : await lookupAll(parsed.name);
  const refused = addresses.find((a) => isForbiddenAddress(a, options.allowlist));
  if (refused !== undefined) {
    const what = "address" in parsed && refused === host ? `${refused} is` : `${host} resolves to ${refused},`;
    throw new AgentVaultError("forbidden_address", `${what} a private or reserved address, or one of this machine's own`);
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
