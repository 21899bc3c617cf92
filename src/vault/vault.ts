// The vault API every part calls: initialize a data directory, unlock it, read the verified state,
// apply a change under the lock, seal and open values. It follows docs/vault-format.md; the file
// layout is in format.ts, the ciphers in crypto.ts, the I/O in store.ts.
import { randomBytes } from "node:crypto";
import { existsSync, unlinkSync } from "node:fs";
import { AgentVaultError, formatIssuePath } from "../shared/errors.ts";
import { checkDataDirectory, readFileNoFollow } from "../shared/files.ts";
import { type HomePaths } from "../shared/paths.ts";
import { constantTimeEqual, deriveKeyArgon2id, hkdf, hmacSha256, open, randomHex, randomKey, randomSalt, seal, type Argon2Params } from "./crypto.ts";
import { AuditTrail } from "./audit.ts";
import { AUDIT_KEY_KIND, CA_KEY_KIND, CA_KEY_SCOPE, CREDENTIAL_KIND, PROPOSAL_VALUE_KIND } from "./sealed-kinds.ts";
import { encodeSigned, encodeStateFile, parseStateFile, type ParsedStateFile } from "./format.ts";
import { type Body, BodySchema, type Header, type Kdf, type VaultRecord } from "./state.schema.ts";
import { ensurePrivateDirectory, fileVersion, readFileOrNull, removeStrayTempFiles, withFileLock, writeFileAtomic } from "./store.ts";

/** OWASP's first argon2id recommendation (46 MiB, 1 pass, 1 lane). */
export const DEFAULT_ARGON2: Argon2Params = { m_kib: 47_104, t: 1, p: 1 };
/** Test-only: AGENT_VAULT_INSECURE_TEST_KDF=1 makes new headers cheap so suites run fast. */
const TEST_ARGON2: Argon2Params = { m_kib: 64, t: 1, p: 1 };

export const MIN_PASSWORD_LENGTH = 8;
const KEY_FILE_PREFIX = "agent-vault-key/v1 ";

export function isInsecureTestKdf(): boolean {
  return process.env.AGENT_VAULT_INSECURE_TEST_KDF === "1";
}

function newArgon2Params(): Argon2Params {
  return isInsecureTestKdf() ? TEST_ARGON2 : DEFAULT_ARGON2;
}

/** Binds the wrapped data key to its KDF parameters (docs/vault-format.md section 4). */
function wrapAssociatedData(kdf: Extract<Kdf, { alg: "argon2id" }>): string {
  return `agent-vault/v1|wrap|argon2id|m=${kdf.m_kib}|t=${kdf.t}|p=${kdf.p}|salt=${kdf.salt}`;
}

/** Binds a sealed value to its kind, vault and name (docs/vault-format.md section 6). */
function recordAssociatedData(kind: string, vaultId: string, name: string): string {
  return `agent-vault/v1|${kind}|${vaultId}|${name}`;
}

export type PasswordSource = () => Promise<string>;

interface Keys {
  readonly record: Buffer;
  readonly mac: Buffer;
}

function subkeys(dataKey: Buffer): Keys {
  return { record: hkdf(dataKey, "agent-vault/v1 record"), mac: hkdf(dataKey, "agent-vault/v1 mac") };
}

async function buildHeader(dataKey: Buffer, password: string | null): Promise<Header> {
  const created_at = new Date().toISOString();
  if (password === null) return { kdf: { alg: "none" }, created_at };
  const params = newArgon2Params();
  const salt = randomSalt();
  const kdf = { alg: "argon2id" as const, ...params, salt: salt.toString("base64") };
  const kek = await deriveKeyArgon2id(password, salt, params);
  const wrapped = seal(kek, dataKey, wrapAssociatedData(kdf));
  return { kdf, wrapped_key: wrapped.toString("base64"), created_at };
}

function writeKeyFile(paths: HomePaths, dataKey: Buffer): void {
  writeFileAtomic(paths.keyFile, Buffer.from(`${KEY_FILE_PREFIX}${dataKey.toString("base64")}\n`, "latin1"));
}

function readKeyFile(paths: HomePaths): Buffer {
  // Never through a planted link: a key file that is not a regular file of the directory is refused.
  const bytes = readFileNoFollow(paths.keyFile);
  if (bytes === null) {
    throw new AgentVaultError("vault_corrupt", `the vault has no master password, but its key file ${paths.keyFile} is missing`, {
      hint: "restore the key file from a backup; without it the vault cannot be opened",
    });
  }
  const text = bytes.toString("latin1");
  const match = /^agent-vault-key\/v1 ([A-Za-z0-9+/]{43}=)\n?$/.exec(text);
  if (!match) throw new AgentVaultError("vault_corrupt", `key file ${paths.keyFile} is corrupted`);
  return Buffer.from(match[1]!, "base64");
}

export function newVaultRecord(name: string): VaultRecord {
  return {
    id: `v_${randomHex(8)}`,
    name,
    created_at: new Date().toISOString(),
    settings: { unmatched: "passthrough", guard: true, scrub: true, guard_bypass: [] },
    credentials: {},
    services: [],
    sessions: [],
    agents: [],
    proposals: [],
    proposal_seq: 0,
    held: [],
    held_seq: 0,
  };
}

export function isInitialized(paths: HomePaths): boolean {
  return existsSync(paths.stateFile);
}

/** Creates the data directory and an empty state with the `default` vault. */
export async function initializeHome(paths: HomePaths, password: string | null): Promise<void> {
  if (password !== null && password.length < MIN_PASSWORD_LENGTH) {
    throw new AgentVaultError("weak_password", `the master password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  ensurePrivateDirectory(paths.home);
  await withFileLock(paths.stateFile, paths.lockFile, async () => {
    if (isInitialized(paths)) {
      throw new AgentVaultError("already_initialized", `agent-vault is already initialized in ${paths.home}`, {
        hint: "use it as it is, or set AGENT_VAULT_HOME to another directory",
      });
    }
    const dataKey = randomKey();
    const header = await buildHeader(dataKey, password);
    const body: Body = { current_vault: "default", vaults: [newVaultRecord("default")] };
    if (password === null) writeKeyFile(paths, dataKey);
    const signed = encodeSigned(header, body);
    writeFileAtomic(paths.stateFile, encodeStateFile(signed, hmacSha256(subkeys(dataKey).mac, signed)));
  });
}

/** An unlocked data directory. Holds the data key's subkeys in memory, never the password. */
/** Opened values kept at most (a vault holds tens; past this the cache starts over). */
const MAX_OPENED_VALUES = 1024;

export class VaultStore {
  readonly paths: HomePaths;
  private keys: Keys;
  private dataKey: Buffer;
  private header: Header;
  private cached: { version: string; body: Body } | null = null;
  private proofKey: { readonly dataKey: Buffer; readonly key: Buffer } | null = null;
  /** Values opened so far (openValue), emptied when the data key changes. */
  private readonly opened = new Map<string, string>();
  /** The highest generation this process has seen: a file below it is a restored old copy. */
  private highWater = 0;
  /** The audit trail (audit.ts): record() any decision; vault changes reach it in update(). */
  readonly audit: AuditTrail = new AuditTrail(this);
  /** Told once per rolled-back file; the default writes one line to stderr. */
  onRollback: (found: number, expected: number) => void = (found, expected) => {
    process.stderr.write(
      `agent-vault: refused ${this.paths.stateFile}: its generation ${found} is older than ${expected}, which this process already saw (an old copy was put back); the newer state stays in force and is written back\n`,
    );
  };

  private constructor(paths: HomePaths, dataKey: Buffer, header: Header) {
    this.paths = paths;
    this.dataKey = dataKey;
    this.keys = subkeys(dataKey);
    this.header = header;
  }

  /** Reads the header, asks for the password only if the vault has one, and unwraps the data key. */
  static async unlock(paths: HomePaths, getPassword: PasswordSource): Promise<VaultStore> {
    // A data directory someone else can write to, or a link to one, is refused before anything is read.
    checkDataDirectory(paths.home);
    // The version is taken before the bytes: if another process writes in between, the cache is
    // marked older than it is and the next read() re-reads, instead of trusting stale bytes.
    const version = fileVersion(paths.stateFile) ?? "";
    const bytes = readFileOrNull(paths.stateFile);
    if (bytes === null) {
      throw new AgentVaultError("not_initialized", `no vault in ${paths.home}`);
    }
    const parsed = parseStateFile(bytes, paths.stateFile);
    const dataKey = await unwrapDataKey(paths, parsed.header, getPassword);
    const store = new VaultStore(paths, dataKey, parsed.header);
    const body = store.verify(parsed);
    store.cached = { version, body };
    store.highWater = body.generation ?? 0;
    return store;
  }

  /**
   * The key a server proves with that it holds this data directory's data key (src/api/proof.ts).
   * Its own HKDF label: a proof never reveals or stands in for the record or MAC keys.
   */
  /** Derived once per data key: the proxy asks for it (placeholders) on every request. */
  serverProofKey(): Buffer {
    if (this.proofKey?.dataKey !== this.dataKey) this.proofKey = { dataKey: this.dataKey, key: hkdf(this.dataKey, "agent-vault/v1 server-proof") };
    return this.proofKey.key;
  }

  get hasPassword(): boolean {
    return this.header.kdf.alg !== "none";
  }

  /** The current state, re-read only when another process has written since the last read. */
  read(): Body {
    const version = fileVersion(this.paths.stateFile);
    if (this.cached && version === this.cached.version) return this.cached.body;
    const bytes = readFileOrNull(this.paths.stateFile);
    if (bytes === null) throw new AgentVaultError("not_initialized", `the vault file ${this.paths.stateFile} disappeared`);
    const parsed = parseStateFile(bytes, this.paths.stateFile);
    const body = this.verify(parsed);
    const generation = body.generation ?? 0;
    if (this.cached && generation < this.highWater) {
      // A restored old copy (revoked sessions alive again, an old password's header): refused.
      // This process keeps the newer state it has, and puts it back for every other reader.
      this.onRollback(generation, this.highWater);
      const good = this.cached.body;
      this.cached = { version: version ?? "", body: good };
      void this.update(() => undefined).catch(() => undefined);
      return good;
    }
    this.header = parsed.header;
    this.highWater = Math.max(this.highWater, generation);
    this.cached = { version: version ?? "", body };
    return body;
  }

  /**
   * Applies `change` to a fresh copy of the state under the lock and writes it atomically. If
   * `change` throws, nothing is written: the all-or-nothing rule of every command.
   */
  async update<T>(change: (body: Body) => T): Promise<T> {
    return withFileLock(this.paths.stateFile, this.paths.lockFile, (lock) => {
      // read() re-verifies only if another process wrote since our last read: every write renames
      // a new file into place, so the inode changes.
      const body = JSON.parse(JSON.stringify(this.read())) as Body;
      // Records a change makes are dropped with it if it throws; else they land, anchored, with it.
      const mark = this.audit.mark();
      let result: T;
      try {
        result = change(body);
      } catch (error) {
        this.audit.dropSince(mark);
        throw error;
      }
      this.audit.sealInto(body);
      this.writeLocked(body, this.header, lock.isCompromised());
      return result;
    });
  }

  /**
   * Sets, changes or removes the password, and rotates the data key: every sealed value is opened
   * with the old key and sealed again with a new one, so an old copy of the file and its old
   * password open nothing written from now on. A process that still holds the old key (a running
   * server) fails authentication on its next read and must be restarted.
   */
  async setPassword(password: string | null): Promise<void> {
    if (password !== null && password.length < MIN_PASSWORD_LENGTH) {
      throw new AgentVaultError("weak_password", `the master password must be at least ${MIN_PASSWORD_LENGTH} characters`);
    }
    const dataKey = randomBytes(32);
    const header = await buildHeader(dataKey, password);
    await withFileLock(this.paths.stateFile, this.paths.lockFile, (lock) => {
      const body = JSON.parse(JSON.stringify(this.read())) as Body;
      // Recorded (and its audit key sealed) under the old key first; the loop below reseals it.
      this.audit.record({ kind: "master_password_changed", detail: password === null ? "removed" : this.hasPassword ? "changed" : "set" });
      this.audit.sealInto(body);
      const newKeys = subkeys(dataKey);
      for (const field of sealedFields(body)) {
        const plain = open(this.keys.record, Buffer.from(field.sealed, "base64"), recordAssociatedData(field.kind, field.scope, field.name));
        if (plain === null) throw new AgentVaultError("vault_corrupt", `the sealed value of ${field.name} in ${this.paths.stateFile} does not open (damaged or moved); the key was not changed`);
        field.reseal(seal(newKeys.record, plain, recordAssociatedData(field.kind, field.scope, field.name)).toString("base64"));
      }
      // Key file first when there is no password: a crash between the two writes must never leave
      // a password-less header without its key. (A crash after it leaves the old file and a key
      // file that does not open it: `master-password remove` again.)
      if (password === null) writeKeyFile(this.paths, dataKey);
      const oldKeys = this.keys;
      this.keys = newKeys;
      this.opened.clear();
      try {
        this.writeLocked(body, header, lock.isCompromised());
      } catch (error) {
        this.keys = oldKeys;
        this.opened.clear();
        throw error;
      }
      this.dataKey = dataKey;
      this.header = header;
      if (password !== null && existsSync(this.paths.keyFile)) unlinkSync(this.paths.keyFile);
    });
  }

  /**
   * The audit trail's MAC key: random, sealed in the state (not derived from the data key, which a
   * password change replaces: the old records must still verify afterwards). With `create`, a
   * state that has none gets one; only inside update(), whose body is about to be written.
   */
  auditKey(body: Body, create: boolean): Buffer | null {
    if (body.audit_key === undefined) {
      if (!create) return null;
      const key = randomKey();
      body.audit_key = seal(this.keys.record, key, recordAssociatedData(AUDIT_KEY_KIND, CA_KEY_SCOPE, "audit")).toString("base64");
      return key;
    }
    const cacheKey = `${AUDIT_KEY_KIND}\0${body.audit_key}`;
    const cached = this.opened.get(cacheKey);
    if (cached !== undefined) return Buffer.from(cached, "base64");
    const key = open(this.keys.record, Buffer.from(body.audit_key, "base64"), recordAssociatedData(AUDIT_KEY_KIND, CA_KEY_SCOPE, "audit"));
    if (key === null) throw new AgentVaultError("vault_corrupt", `the audit key in ${this.paths.stateFile} does not open (damaged or moved)`);
    this.opened.set(cacheKey, key.toString("base64"));
    return key;
  }

  sealValue(kind: string, vaultId: string, name: string, value: string): string {
    return seal(this.keys.record, Buffer.from(value, "utf8"), recordAssociatedData(kind, vaultId, name)).toString("base64");
  }

  /** Opens a sealed value; a value moved to another key, kind or vault fails here by design. */
  openValue(kind: string, vaultId: string, name: string, sealed: string): string {
    // The proxy opens the injected value on every request: opened values are kept, keyed by
    // everything the seal is bound to (a value moved to another record is opened, and refused,
    // anew). This process holds the values anyway: the guard's patterns are made of them.
    const cacheKey = `${kind}\0${vaultId}\0${name}\0${sealed}`;
    const cached = this.opened.get(cacheKey);
    if (cached !== undefined) return cached;
    const plain = open(this.keys.record, Buffer.from(sealed, "base64"), recordAssociatedData(kind, vaultId, name));
    if (plain === null) {
      throw new AgentVaultError("vault_corrupt", `the sealed value of ${name} in ${this.paths.stateFile} does not open (damaged or moved)`);
    }
    const value = plain.toString("utf8");
    if (this.opened.size >= MAX_OPENED_VALUES) this.opened.clear();
    this.opened.set(cacheKey, value);
    return value;
  }

  private writeLocked(body: Body, header: Header, isCompromised: boolean): void {
    const checked = BodySchema.safeParse(body);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new AgentVaultError("internal", `refusing to write an invalid state (${formatIssuePath(issue.path)}: ${issue.message})`);
    }
    if (isCompromised) {
      throw new AgentVaultError("lock_timeout", "lost the vault lock to another process while writing; nothing was written", {
        hint: "run the command again",
      });
    }
    removeStrayTempFiles(this.paths.stateFile);
    const generation = Math.max(this.highWater, checked.data.generation ?? 0) + 1;
    checked.data.generation = generation;
    const signed = encodeSigned(header, checked.data);
    writeFileAtomic(this.paths.stateFile, encodeStateFile(signed, hmacSha256(this.keys.mac, signed)));
    this.highWater = generation;
    this.cached = { version: fileVersion(this.paths.stateFile) ?? "", body: checked.data };
  }

  private verify(parsed: ParsedStateFile): Body {
    if (!constantTimeEqual(hmacSha256(this.keys.mac, parsed.signed), parsed.mac)) {
      throw new AgentVaultError(
        "vault_corrupt",
        `vault file ${this.paths.stateFile} fails authentication under this process's key (the master password was changed since this process started, an old copy was put back, or it was changed outside agent-vault)`,
        {
          hint: "restart this agent-vault process (a running server: agent-vault server stop, then start it again)",
        },
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(parsed.bodyText);
    } catch {
      throw new AgentVaultError("vault_corrupt", `vault file ${this.paths.stateFile} has a body that is not JSON`);
    }
    const body = BodySchema.safeParse(json);
    if (!body.success) {
      const issue = body.error.issues[0]!;
      throw new AgentVaultError("vault_corrupt", `vault file ${this.paths.stateFile} is refused: ${formatIssuePath(issue.path)}: ${issue.message}`);
    }
    return body.data;
  }
}

/** Every sealed value of a state, with what it is bound to and a way to replace it. */
function sealedFields(body: Body): { kind: string; scope: string; name: string; sealed: string; reseal(value: string): void }[] {
  const out: { kind: string; scope: string; name: string; sealed: string; reseal(value: string): void }[] = [];
  const ca = body.ca;
  if (ca) out.push({ kind: CA_KEY_KIND, scope: CA_KEY_SCOPE, name: "ca", sealed: ca.key, reseal: (v) => (ca.key = v) });
  if (body.audit_key !== undefined) out.push({ kind: AUDIT_KEY_KIND, scope: CA_KEY_SCOPE, name: "audit", sealed: body.audit_key, reseal: (v) => (body.audit_key = v) });
  for (const vault of body.vaults) {
    for (const [key, record] of Object.entries(vault.credentials)) {
      out.push({ kind: CREDENTIAL_KIND, scope: vault.id, name: key, sealed: record.value, reseal: (v) => (record.value = v) });
    }
    for (const proposal of vault.proposals) {
      for (const slot of proposal.credentials) {
        if ("sealed_value" in slot && slot.sealed_value !== undefined) {
          out.push({ kind: PROPOSAL_VALUE_KIND, scope: vault.id, name: `${proposal.id}:${slot.key}`, sealed: slot.sealed_value, reseal: (v) => (slot.sealed_value = v) });
        }
      }
    }
  }
  return out;
}

async function unwrapDataKey(paths: HomePaths, header: Header, getPassword: PasswordSource): Promise<Buffer> {
  const kdf = header.kdf;
  if (kdf.alg === "none") return readKeyFile(paths);
  const password = await getPassword();
  const kek = await deriveKeyArgon2id(password, Buffer.from(kdf.salt, "base64"), kdf);
  const dataKey = open(kek, Buffer.from(header.wrapped_key ?? "", "base64"), wrapAssociatedData(kdf));
  if (dataKey === null) throw new AgentVaultError("wrong_password", "wrong master password");
  return dataKey;
}
