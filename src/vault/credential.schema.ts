// Credential records as stored in the body (docs/vault-format.md section 5). The value is sealed;
// everything else is metadata that listings may show.
import { z } from "zod";

/** The `kind` in a sealed credential value's associated data (docs/vault-format.md section 6). */
export const CREDENTIAL_KIND = "credential";

export const CREDENTIAL_KEY_PATTERN = /^[A-Z][A-Z0-9_]*$/;

export const CredentialKeySchema = z
  .string()
  .max(128, "credential keys are at most 128 characters")
  .regex(CREDENTIAL_KEY_PATTERN, "credential keys are UPPER_SNAKE_CASE: a capital letter, then A-Z, 0-9 or _");

export const IsoTimeSchema = z.iso.datetime({ offset: true });

export const CredentialTypeSchema = z.enum(["static", "oauth", "source"]);

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

const FullCredentialMapSchema = z.record(CredentialKeySchema, CredentialRecordSchema);
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const RECORD_FIELDS = new Set(["type", "description", "created_at", "updated_at", "expires_at", "metadata", "value"]);

/** The same rules as FullCredentialMapSchema, checked without zod's per-object cost. */
function isCredentialMap(value: unknown): boolean {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  for (const [key, record] of Object.entries(value)) {
    if (key.length > 128 || !CREDENTIAL_KEY_PATTERN.test(key)) return false;
    if (typeof record !== "object" || record === null) return false;
    const r = record as Record<string, unknown>;
    for (const field of Object.keys(r)) if (!RECORD_FIELDS.has(field)) return false;
    if (r.type !== "static" && r.type !== "oauth" && r.type !== "source") return false;
    if (typeof r.description !== "string" || r.description.length > 1000) return false;
    if (typeof r.created_at !== "string" || !ISO_TIME.test(r.created_at)) return false;
    if (typeof r.updated_at !== "string" || !ISO_TIME.test(r.updated_at)) return false;
    if (r.expires_at !== null && (typeof r.expires_at !== "string" || !ISO_TIME.test(r.expires_at))) return false;
    if (typeof r.value !== "string" || r.value.length % 4 !== 0 || !BASE64.test(r.value)) return false;
    const meta = r.metadata;
    if (typeof meta !== "object" || meta === null || Array.isArray(meta)) return false;
    for (const [name, text] of Object.entries(meta)) {
      if (name.length < 1 || name.length > 128 || typeof text !== "string" || text.length > 4096) return false;
    }
  }
  return true;
}

/**
 * A vault's credentials. A vault holds thousands of records and every command reads them all, so
 * well-formed maps take a plain-code path (about 100x cheaper than zod's per-object checks); any
 * map that fails it goes through the full schema, whose first issue names the field.
 */
export const CredentialMapSchema = z.unknown().transform((value, ctx): Record<string, CredentialRecord> => {
  if (isCredentialMap(value)) return value as Record<string, CredentialRecord>;
  const full = FullCredentialMapSchema.safeParse(value);
  if (full.success) return full.data;
  for (const issue of full.error.issues) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
  return z.NEVER;
});
