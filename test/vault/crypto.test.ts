import { describe, expect, test } from "bun:test";
import { deriveKeyArgon2id, hkdf, open, randomKey, seal } from "../../src/vault/crypto.ts";

describe("seal/open", () => {
  test("round trip", () => {
    const key = randomKey();
    const sealed = seal(key, Buffer.from("sk-live-123"), "agent-vault/v1|credential|v_1|A");
    expect(open(key, sealed, "agent-vault/v1|credential|v_1|A")?.toString()).toBe("sk-live-123");
  });

  test("a fresh nonce every time", () => {
    const key = randomKey();
    const a = seal(key, Buffer.from("same"), "ad");
    const b = seal(key, Buffer.from("same"), "ad");
    expect(a.equals(b)).toBe(false);
    expect(a.subarray(0, 12).equals(b.subarray(0, 12))).toBe(false);
  });

  test("wrong key, other associated data, flipped bit or short input all fail", () => {
    const key = randomKey();
    const sealed = seal(key, Buffer.from("value"), "agent-vault/v1|credential|v_1|A");
    expect(open(randomKey(), sealed, "agent-vault/v1|credential|v_1|A")).toBeNull();
    expect(open(key, sealed, "agent-vault/v1|credential|v_1|B")).toBeNull();
    expect(open(key, sealed, "agent-vault/v1|credential|v_2|A")).toBeNull();
    for (let i = 0; i < sealed.length; i++) {
      const copy = Buffer.from(sealed);
      copy[i]! ^= 0x01;
      expect(open(key, copy, "agent-vault/v1|credential|v_1|A")).toBeNull();
    }
    expect(open(key, sealed.subarray(0, 20), "agent-vault/v1|credential|v_1|A")).toBeNull();
  });
});

describe("key derivation", () => {
  test("argon2id is deterministic for a salt and differs by password and salt", async () => {
    const salt = Buffer.alloc(16, 7);
    const params = { m_kib: 64, t: 1, p: 1 };
    const a = await deriveKeyArgon2id("password-one", salt, params);
    expect(a.length).toBe(32);
    expect((await deriveKeyArgon2id("password-one", salt, params)).equals(a)).toBe(true);
    expect((await deriveKeyArgon2id("password-two", salt, params)).equals(a)).toBe(false);
    expect((await deriveKeyArgon2id("password-one", Buffer.alloc(16, 8), params)).equals(a)).toBe(false);
  });

  test("argon2id agrees with an independent implementation (Bun's native argon2 verifier)", async () => {
    const salt = Buffer.from("somesaltsomesalt");
    for (const params of [
      { m_kib: 64, t: 1, p: 1 },
      { m_kib: 256, t: 2, p: 2 },
    ]) {
      const key = await deriveKeyArgon2id("pass word ünïcode", salt, params);
      const b64 = (b: Buffer) => b.toString("base64").replace(/=+$/, "");
      const phc = `$argon2id$v=19$m=${params.m_kib},t=${params.t},p=${params.p}$${b64(salt)}$${b64(key)}`;
      expect(await Bun.password.verify("pass word ünïcode", phc)).toBe(true);
      expect(await Bun.password.verify("pass word unicode", phc)).toBe(false);
    }
  });

  test("known answer: derived keys never change under a library upgrade", async () => {
    const key = await deriveKeyArgon2id("password", Buffer.from("somesaltsomesalt"), { m_kib: 64, t: 1, p: 1 });
    expect(key.toString("hex")).toBe(KNOWN_ANSWER);
  });

  test("hkdf separates subkeys by label", () => {
    const dataKey = randomKey();
    expect(hkdf(dataKey, "agent-vault/v1 record").equals(hkdf(dataKey, "agent-vault/v1 mac"))).toBe(false);
  });
});

const KNOWN_ANSWER = "e793d64ef75d58f503d4631b2b149f7f80127c5f3993d89b1c9b781e51d0b413";
