// The header and body of the state file (docs/vault-format.md sections 3 and 5). KDF parameters are
// capped here, on read, so a hostile file cannot make an unlock allocate or spin without bound.
import { z } from "zod";
import { CredentialMapSchema, IsoTimeSchema } from "./credential.schema.ts";
import { AgentSchema, PolicySchema } from "./agent.schema.ts";
import { AuditAnchorSchema } from "./audit.schema.ts";
import { HeldSchema } from "./held.schema.ts";
import { ProposalSchema } from "./proposal.schema.ts";
import { ServiceSchema } from "./service.schema.ts";

export const KDF_CAPS = { m_kib: 1_048_576, t: 16, p: 8 } as const;

export const KdfSchema = z.discriminatedUnion("alg", [
  z
    .object({
      alg: z.literal("argon2id"),
      m_kib: z.number().int().max(KDF_CAPS.m_kib, `argon2id memory is capped at ${KDF_CAPS.m_kib} KiB`),
      t: z.number().int().min(1).max(KDF_CAPS.t, `argon2id passes are capped at ${KDF_CAPS.t}`),
      p: z.number().int().min(1).max(KDF_CAPS.p, `argon2id lanes are capped at ${KDF_CAPS.p}`),
      salt: z.base64().refine((s) => {
        const n = Buffer.from(s, "base64").length;
        return n >= 16 && n <= 64;
      }, "salt must be 16 to 64 bytes"),
    })
    .strict()
    .refine((k) => k.m_kib >= 8 * k.p, "argon2id memory must be at least 8 KiB per lane"),
  z.object({ alg: z.literal("none") }).strict(),
]);

export const HeaderSchema = z
  .object({
    kdf: KdfSchema,
    wrapped_key: z.base64().optional(),
    created_at: IsoTimeSchema,
  })
  .strict()
  .refine((h) => (h.kdf.alg === "argon2id") === (h.wrapped_key !== undefined), "wrapped_key goes with argon2id, and only with it");

export const VaultNameSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "vault names are lowercase letters, digits, - and _ (at most 64)");

export const UnmatchedPolicySchema = z.enum(["passthrough", "deny", "guard"]);

export const VaultSettingsSchema = z
  .object({
    unmatched: UnmatchedPolicySchema,
    /** The exfiltration guard: requests carrying a credential value are refused (on for new vaults). */
    guard: z.boolean().default(false),
    /** Response scrubbing: credential values in responses become [REDACTED:KEY] (on for new vaults). */
    scrub: z.boolean().default(false),
    /** Under `unmatched: guard`, hosts (e.g. ones that pin certificates) that stay plain tunnels. */
    guard_bypass: z.array(z.string().min(1).max(253)).max(500).default([]),
  })
  .strict();

/** An agent session (`run`): only the SHA-256 of its token is kept. */
export const SessionSchema = z
  .object({
    id: z.string().regex(/^s_[0-9a-f]{12}$/),
    token_sha256: z.string().regex(/^[0-9a-f]{64}$/),
    label: z.string().max(200),
    /** Services the session may use; null for every service of the vault. */
    services: z.array(z.string()).nullable(),
    created_at: IsoTimeSchema,
    expires_at: IsoTimeSchema,
    revoked_at: IsoTimeSchema.nullable(),
    /** `run --agent NAME`: the session acts as this agent (its grants and policy). */
    agent: z
      .string()
      .regex(/^agt_[0-9a-f]{12}$/)
      .nullable()
      .default(null),
    /** `run --policy FILE`: a policy of the session's own. */
    policy: PolicySchema.nullable().default(null),
    /** Requests counted against the session policy's usage cap. */
    usage: z.number().int().nonnegative().default(0),
    /** The `run` that holds it (pid and start time): the session ends when that process does. */
    run: z
      .object({
        pid: z.number().int().positive(),
        start: z
          .string()
          .regex(/^\d{1,20}$/)
          .nullable(),
      })
      .strict()
      .nullable()
      .default(null),
  })
  .strict();

export const VaultRecordSchema = z
  .object({
    id: z.string().regex(/^v_[0-9a-f]{16}$/),
    name: VaultNameSchema,
    created_at: IsoTimeSchema,
    settings: VaultSettingsSchema,
    credentials: CredentialMapSchema,
    services: z.array(ServiceSchema),
    sessions: z.array(SessionSchema).default([]),
    agents: z.array(AgentSchema).default([]),
    proposals: z.array(ProposalSchema).default([]),
    /** The last proposal number handed out: numbers are never reused. */
    proposal_seq: z.number().int().nonnegative().default(0),
    /** Requests held for a person's approval (held.schema.ts), pending and recently answered. */
    held: z.array(HeldSchema).default([]),
    /** The last held-request number handed out: numbers are never reused. */
    held_seq: z.number().int().nonnegative().default(0),
  })
  .strict();

/** The proxy's CA: the certificate in clear, the private key sealed (kind "ca-key"). */
export const CaRecordSchema = z.object({ cert_pem: z.string().max(8192), key: z.base64() }).strict();

export const BodySchema = z
  .object({
    /** Counts writes: a running process refuses a file whose generation goes back (a restored copy). */
    generation: z.number().int().min(0).optional(),
    current_vault: VaultNameSchema,
    vaults: z.array(VaultRecordSchema).min(1),
    ca: CaRecordSchema.optional(),
    /** The audit trail's head (audit.ts): the newest record the log must still hold. */
    audit: AuditAnchorSchema.optional(),
    /** The audit key, sealed (kind "audit-key"): it MACs every audit record. */
    audit_key: z.base64().optional(),
  })
  .strict();

export type Kdf = z.infer<typeof KdfSchema>;
export type Header = z.infer<typeof HeaderSchema>;
export type UnmatchedPolicy = z.infer<typeof UnmatchedPolicySchema>;
export type VaultSettings = z.infer<typeof VaultSettingsSchema>;
export type VaultRecord = z.infer<typeof VaultRecordSchema>;
export type Body = z.infer<typeof BodySchema>;
export type Session = z.infer<typeof SessionSchema>;
export type CaRecord = z.infer<typeof CaRecordSchema>;
