// Agents, their grants, and access policies (docs/vault-format.md section 5). An agent is a named
// identity with a long-lived token (`av_agt_...`, stored only as its SHA-256); what it may reach is
// exactly its unexpired grants, each naming one service of the vault. A policy narrows further:
// per-service method and path rules, a rate limit, allowed time windows and a lifetime usage cap.
import { z } from "zod";
import { IsoTimeSchema } from "./credential.schema.ts";
import { parseDuration } from "../shared/duration.ts";

export const AgentNameSchema = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, "agent names are lowercase letters, digits, '.', '-' and '_' (at most 64), starting with a letter or digit");

export const GrantSchema = z
  .object({
    service: z.string().min(1).max(64),
    created_at: IsoTimeSchema,
    /** null: until revoked. */
    expires_at: IsoTimeSchema.nullable(),
    by: z.string().max(200),
  })
  .strict();

const METHOD = z.string().regex(/^[A-Z]{1,16}$/, "methods are upper-case HTTP method names like GET");
const PATH_PATTERN = z
  .string()
  .max(500)
  .regex(/^\/[^\s]*$/, "paths start with / and hold no spaces; * matches any run of characters, / included");

export const DenyRuleSchema = z
  .object({
    /** Omitted: every method. */
    methods: z.array(METHOD).min(1).optional(),
    path: PATH_PATTERN,
  })
  .strict();

/** A held request waits at most this long for a person (an hour: the agent's connection stays open). */
export const MAX_APPROVAL_TIMEOUT_MS = 3_600_000;
export const DEFAULT_APPROVAL_TIMEOUT_MS = 120_000;

/**
 * A request a person must allow before it goes upstream (held requests, src/vault/held.ts): shaped
 * like a deny entry, with how long it waits for an answer (default 120s).
 */
export const ApproveRuleSchema = z
  .object({
    /** Omitted: every method. */
    methods: z.array(METHOD).min(1).optional(),
    path: PATH_PATTERN,
    /** A duration like 30s or 5m, at most 1h. */
    timeout: z
      .string()
      .refine((t) => {
        const ms = parseDuration(t);
        return ms !== null && ms <= MAX_APPROVAL_TIMEOUT_MS;
      }, "timeout is a duration like 30s or 5m, at most 1h")
      .optional(),
  })
  .strict();

export const ServiceRuleSchema = z
  .object({
    service: z.string().min(1).max(64),
    /** Only these methods (e.g. GET, HEAD for read-only). Omitted: any method. */
    methods: z.array(METHOD).min(1).optional(),
    /** Only paths matching one of these. Omitted: any path. */
    paths: z.array(PATH_PATTERN).min(1).optional(),
    /** Refused even when the above allow it. */
    deny: z.array(DenyRuleSchema).optional(),
    /** Held until a person allows them (after the rules above allowed them). */
    approve: z.array(ApproveRuleSchema).max(50).optional(),
  })
  .strict();

export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
const CLOCK = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "times are HH:MM, 00:00 to 23:59");

export const TimeWindowSchema = z
  .object({
    /** Omitted: every day. */
    days: z.array(z.enum(DAYS)).min(1).optional(),
    start: CLOCK,
    /** Exclusive; a window whose end is before its start runs past midnight. */
    end: CLOCK,
    /** The clock the window is read on, e.g. +02:00; default UTC. */
    utc_offset: z
      .string()
      .regex(/^[+-]([01]\d|2[0-3]):[0-5]\d$/, "utc_offset is like +02:00 or -05:30")
      .optional(),
  })
  .strict();

/** The largest `rate_limit.requests_per_minute` and `usage_cap`; the CLI's options name them too. */
export const MAX_REQUESTS_PER_MINUTE = 1_000_000;
export const MAX_USAGE_CAP = 1_000_000_000;

export const PolicySchema = z
  .object({
    rules: z.array(ServiceRuleSchema).max(100).optional(),
    rate_limit: z
      .object({ requests_per_minute: z.number().int().min(1).max(MAX_REQUESTS_PER_MINUTE) })
      .strict()
      .optional(),
    /** Requests are allowed only inside one of these. */
    time_windows: z.array(TimeWindowSchema).min(1).max(50).optional(),
    /** Requests allowed over the whole life of the agent (or session). */
    usage_cap: z.number().int().min(1).max(MAX_USAGE_CAP).optional(),
  })
  .strict();

export const AgentSchema = z
  .object({
    id: z.string().regex(/^agt_[0-9a-f]{12}$/),
    name: AgentNameSchema,
    description: z.string().max(500),
    token_sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** The token's first characters, to tell tokens apart in listings; not enough to use it. */
    token_hint: z.string().max(16),
    created_at: IsoTimeSchema,
    rotated_at: IsoTimeSchema.nullable(),
    revoked_at: IsoTimeSchema.nullable(),
    grants: z.array(GrantSchema),
    policy: PolicySchema.nullable(),
    /** Requests counted against a usage cap (kept only while a cap applies). */
    usage: z.number().int().nonnegative(),
  })
  .strict();

export type Grant = z.infer<typeof GrantSchema>;
export type ServiceRule = z.infer<typeof ServiceRuleSchema>;
export type ApproveRule = z.infer<typeof ApproveRuleSchema>;
export type TimeWindow = z.infer<typeof TimeWindowSchema>;
export type Policy = z.infer<typeof PolicySchema>;
export type Agent = z.infer<typeof AgentSchema>;
