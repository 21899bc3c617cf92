// Parsing and writing the five-line state file of docs/vault-format.md sections 1-2: version line,
// header, body, mac, sum. No ciphers here: the MAC is computed and checked by the caller with the
// key; this module checks structure, version and the unkeyed sum, and names the file on failure.
import { AgentVaultError, formatIssuePath } from "../shared/errors.ts";
import { sha256Hex } from "./crypto.ts";
import { type Header, HeaderSchema } from "./state.schema.ts";

export const MAGIC = "agent-vault/v";
export const FORMAT_VERSION = 1;
const VERSION_LINE = `${MAGIC}${FORMAT_VERSION}`;

export interface ParsedStateFile {
  readonly header: Header;
  /** The body line, still JSON text: it is parsed only after the MAC is checked. */
  readonly bodyText: string;
  readonly mac: Buffer;
  /** Lines 1-3 with their newlines: what the MAC covers. */
  readonly signed: Buffer;
}

function corrupt(path: string, what: string): AgentVaultError {
  return new AgentVaultError("vault_corrupt", `vault file ${path} is ${what}`);
}

/** Checks version, shape and sum, and parses the header strictly. Throws a named error. */
export function parseStateFile(bytes: Buffer, path: string): ParsedStateFile {
  // 1. Version first: refuse an unknown version before looking at anything else.
  const firstNewline = bytes.indexOf(0x0a);
  const firstLine = bytes.subarray(0, firstNewline === -1 ? Math.min(bytes.length, 64) : firstNewline).toString("latin1");
  if (!firstLine.startsWith(MAGIC)) {
    if (bytes.length === 0) throw corrupt(path, "empty");
    throw corrupt(path, "not an agent-vault state file (no version line)");
  }
  if (firstLine !== VERSION_LINE) {
    const version = firstLine.slice(MAGIC.length);
    throw new AgentVaultError("unsupported_version", `vault file ${path} has format version "${version.slice(0, 16)}"; this agent-vault reads version ${FORMAT_VERSION}`);
  }
  // 2. Five lines, each ended by \n, and the sum over lines 1-4.
  const lines: Buffer[] = [];
  let start = 0;
  while (start < bytes.length) {
    const end = bytes.indexOf(0x0a, start);
    if (end === -1) throw corrupt(path, "truncated (the last line has no end)");
    lines.push(bytes.subarray(start, end));
    start = end + 1;
  }
  if (lines.length < 5) throw corrupt(path, `truncated (${lines.length} of 5 lines)`);
  if (lines.length > 5) throw corrupt(path, `corrupted (${lines.length} lines, expected 5)`);
  const sumLine = lines[4]!.toString("latin1");
  const sumOffset = bytes.length - lines[4]!.length - 1;
  if (!/^sum [0-9a-f]{64}$/.test(sumLine) || sumLine.slice(4) !== sha256Hex(bytes.subarray(0, sumOffset))) {
    throw corrupt(path, "corrupted (checksum mismatch)");
  }
  const macLine = lines[3]!.toString("latin1");
  if (!/^mac [A-Za-z0-9+/]{43}=$/.test(macLine)) throw corrupt(path, "corrupted (malformed mac line)");
  const macOffset = sumOffset - lines[3]!.length - 1;
  // 3. Header, strictly, with the KDF caps.
  let headerJson: unknown;
  try {
    headerJson = JSON.parse(lines[1]!.toString("utf8"));
  } catch {
    throw corrupt(path, "corrupted (the header is not JSON)");
  }
  const header = HeaderSchema.safeParse(headerJson);
  if (!header.success) {
    const issue = header.error.issues[0]!;
    throw corrupt(path, `refused: header field ${formatIssuePath(issue.path)}: ${issue.message}`);
  }
  return {
    header: header.data,
    bodyText: lines[2]!.toString("utf8"),
    mac: Buffer.from(macLine.slice(4), "base64"),
    signed: bytes.subarray(0, macOffset),
  };
}

/** Lines 1-3 (what the MAC covers) for a header and a body. */
export function encodeSigned(header: Header, body: unknown): Buffer {
  return Buffer.from(`${VERSION_LINE}\n${JSON.stringify(header)}\n${JSON.stringify(body)}\n`, "utf8");
}

/** The whole file: the signed lines, the mac line and the sum line. */
export function encodeStateFile(signed: Buffer, mac: Buffer): Buffer {
  const withMac = Buffer.concat([signed, Buffer.from(`mac ${mac.toString("base64")}\n`, "latin1")]);
  return Buffer.concat([withMac, Buffer.from(`sum ${sha256Hex(withMac)}\n`, "latin1")]);
}
