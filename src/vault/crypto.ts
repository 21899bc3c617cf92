// The only module that touches ciphers (docs/vault-format.md sections 4 and 6): argon2id, HKDF,
// AES-256-GCM sealing with associated data, HMAC and SHA-256. Everything here is synchronous except
// the KDF, and nothing here knows about files.
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { argon2id } from "hash-wasm";

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;

export interface Argon2Params {
  readonly m_kib: number;
  readonly t: number;
  readonly p: number;
}

export function randomKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

export function randomSalt(): Buffer {
  return randomBytes(16);
}

export async function deriveKeyArgon2id(password: string, salt: Uint8Array, params: Argon2Params): Promise<Buffer> {
  const out = await argon2id({
    password,
    salt,
    parallelism: params.p,
    iterations: params.t,
    memorySize: params.m_kib,
    hashLength: KEY_BYTES,
    outputType: "binary",
  });
  return Buffer.from(out);
}

export function hkdf(ikm: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync("sha256", ikm, Buffer.alloc(0), Buffer.from(info, "utf8"), KEY_BYTES));
}

/** AES-256-GCM under a fresh random nonce; returns nonce || ciphertext || tag. */
export function seal(key: Uint8Array, plaintext: Uint8Array, associatedData: string): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(Buffer.from(associatedData, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** Opens what seal() produced; returns null when authentication fails (wrong key, AD or bytes). */
export function open(key: Uint8Array, sealed: Uint8Array, associatedData: string): Buffer | null {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return null;
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, nonce);
    decipher.setAAD(Buffer.from(associatedData, "utf8"));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return null;
  }
}

export function hmacSha256(key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}
