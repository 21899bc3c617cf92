// The audit trail's records and the anchor the vault file keeps (docs/vault-format.md section 8).
// A record names what was decided and by which rule or code: keys, hosts, ids, never a value.
import { z } from "zod";
import { IsoTimeSchema } from "./credential.schema.ts";

export const AUDIT_KINDS = [
  "request_allowed",
  "request_blocked",
  "proposal_filed",
  "proposal_approved",
  "proposal_rejected",
  "credential_set",
  "credential_deleted",
  "grant_added",
  "grant_revoked",
  "session_started",
  "session_ended",
  "held_waiting",
  "held_allowed",
  "held_denied",
  "held_timeout",
  "master_password_changed",
  /** A service added, updated, removed, enabled or disabled (detail says which). */
  "service_changed",
  /** An agent created, rotated, revoked or deleted, or its policy set or cleared. */
  "agent_changed",
  /** A vault's unmatched-host policy, guard, scrubbing or guard bypass changed. */
  "settings_changed",
  /** Records this process could not write (a full disk): how many, so the gap is on file. */
  "records_lost",
] as const;

const Text = z.string().max(2048);
const Name = z.string().max(256);

/** What a caller hands to AuditTrail.record: the kind and its facts. */
export const AuditEventSchema = z
  .object({
    kind: z.enum(AUDIT_KINDS),
    vault: Name.nullable().optional(),
    session: Name.nullable().optional(),
    agent: Name.nullable().optional(),
    method: Name.optional(),
    host: Name.optional(),
    /** Without the query string: a query can carry a value. */
    path: Text.optional(),
    service: Name.nullable().optional(),
    status: z.number().int().optional(),
    /** The answer's error code (policy_denied, credential_exfiltration, ...). */
    code: Name.nullable().optional(),
    /** The rule, or the credential key the guard found: which rule decided, never a value. */
    rule: Name.nullable().optional(),
    reason: Text.optional(),
    proposal: z.number().int().nonnegative().optional(),
    keys: z.array(Name).max(1000).optional(),
    services: z.array(Name).max(1000).optional(),
    /** A held request's id, an agent's name, a session's id: whatever the kind is about. */
    id: Name.optional(),
    by: Name.optional(),
    detail: Text.optional(),
  })
  .strict();

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/** One line of the audit log, as verify and export read it. */
export const AuditRecordSchema = AuditEventSchema.extend({
  seq: z.number().int().positive(),
  time: IsoTimeSchema,
  prev: Hex64,
  mac: Hex64,
}).strict();

/** The chain's head as the vault file last saw it: the newest record a key holder vouched for. */
export const AuditAnchorSchema = z
  .object({
    seq: z.number().int().nonnegative(),
    hash: Hex64,
    time: IsoTimeSchema,
  })
  .strict();

export type AuditKind = (typeof AUDIT_KINDS)[number];
export type AuditEvent = z.infer<typeof AuditEventSchema>;
export type AuditRecord = z.infer<typeof AuditRecordSchema>;
export type AuditAnchor = z.infer<typeof AuditAnchorSchema>;
