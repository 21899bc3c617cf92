// Credential records as stored in the body (docs/vault-format.md section 5). The value is sealed;
// everything else is metadata that listings may show.
import { z } from "zod";

export const CREDENTIAL_KEY_PATTERN = /^[A-Z][A-Z0-9_]*$/;

export const CredentialKeySchema = z
  .string()
  .max(128, "credential keys are at most 128 characters")
  .regex(CREDENTIAL_KEY_PATTERN, "credential keys are UPPER_SNAKE_CASE: a capital letter, then A-Z, 0-9 or _");

export const IsoTimeSchema = z.iso.datetime({ offset: true });

export const CredentialTypeSchema = z.enum(["static", "oauth"]);

export const CredentialRecordSchema = z
  .object({
    type: CredentialTypeSchema,
    description: z.string().max(1000),
    created_at: IsoTimeSchema,
    updated_at: IsoTimeSchema,
    expires_at: IsoTimeSchema.nullable(),
    metadata: z.record(z.string().min(1).max(128), z.string().max(4096)),
    /** base64 of nonce || ciphertext || tag, sealed with kind "credential". */
    value: z.base64(),
  })
  .strict();

export type CredentialKey = z.infer<typeof CredentialKeySchema>;
export type CredentialType = z.infer<typeof CredentialTypeSchema>;
export type CredentialRecord = z.infer<typeof CredentialRecordSchema>;
