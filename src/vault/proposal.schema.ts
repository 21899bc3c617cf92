// Proposals (DESIGN "Proposals"): what an agent may ask for, and how a proposal is kept. Strict at
// the boundary: bounded counts and lengths, and every field a 400 can name.
import { z } from "zod";
import { CredentialKeySchema, IsoTimeSchema } from "./credential.schema.ts";
import { AuthSchema, frontingHeaderOf, HostPatternSchema, ServiceNameSchema } from "./service.schema.ts";
import { sourceCommandOf } from "./source.schema.ts";

export const MAX_PENDING_PROPOSALS = 20;
export const PROPOSAL_TTL_MS = 7 * 86_400_000;

const HttpUrlSchema = z
  .string()
  .max(2048)
  .refine((u) => {
    try {
      return ["http:", "https:"].includes(new URL(u).protocol);
    } catch {
      return false;
    }
  }, "must be an http(s) URL");

export const OAuthSlotSchema = z
  .object({
    authorization_url: HttpUrlSchema.optional(),
    token_url: HttpUrlSchema,
    scopes: z.string().max(1000).optional(),
    client_id: z.string().max(500).optional(),
    token_auth_method: z.enum(["client_secret_post", "client_secret_basic", "none"]).optional(),
  })
  .strict();

export const ServiceChangeSchema = z.discriminatedUnion("action", [
  z
    .object({
      action: z.literal("set"),
      name: ServiceNameSchema,
      host: HostPatternSchema,
      auth: AuthSchema,
      enabled: z.boolean().optional(),
      description: z.string().max(500).optional(),
    })
    .strict(),
  z.object({ action: z.literal("delete"), name: ServiceNameSchema }).strict(),
]);

export const CredentialSlotSchema = z.discriminatedUnion("action", [
  z
    .object({
      action: z.literal("set"),
      key: CredentialKeySchema,
      type: z.enum(["static", "oauth", "source"]).default("static"),
      description: z.string().max(500).optional(),
      obtain: HttpUrlSchema.optional(),
      obtain_instructions: z.string().max(2000).optional(),
      value: z.string().min(1).max(65_536).optional(),
      oauth: OAuthSlotSchema.optional(),
      /** A reference (pass:…, op://…, vault:…#…, exec:…) the value is fetched from once approved. */
      source: z.string().min(1).max(1024).optional(),
    })
    .strict()
    .superRefine((slot, ctx) => {
      if (slot.source !== undefined) {
        if (slot.type === "oauth") ctx.addIssue({ code: "custom", path: ["source"], message: "an oauth slot cannot have a source" });
        if (slot.value !== undefined) ctx.addIssue({ code: "custom", path: ["value"], message: "a slot with a source takes its value from the source, not a value" });
        // exec: would run a command of the agent's choosing as the person, outside any sandbox,
        // with the broker's environment: only the person sets one (vault credential source).
        if (slot.source.startsWith("exec:")) {
          ctx.addIssue({ code: "custom", path: ["source"], message: "an exec: source runs a command; only the person can set one, with agent-vault vault credential source" });
        } else {
          try {
            sourceCommandOf(slot.source);
          } catch (error) {
            ctx.addIssue({ code: "custom", path: ["source"], message: error instanceof Error ? error.message : "is not a source" });
          }
        }
      } else if (slot.type === "source") ctx.addIssue({ code: "custom", path: ["source"], message: "a source slot needs a source (pass:PATH, op://VAULT/ITEM/FIELD, ...)" });
      if (slot.type === "oauth" && !slot.oauth) ctx.addIssue({ code: "custom", path: ["oauth"], message: "an oauth slot needs an oauth object with token_url" });
      if (slot.type !== "oauth" && slot.oauth) ctx.addIssue({ code: "custom", path: ["oauth"], message: 'oauth settings need type "oauth"' });
      if (slot.type === "oauth" && slot.value !== undefined) ctx.addIssue({ code: "custom", path: ["value"], message: "an oauth slot is completed by connect or paste, not a value" });
    }),
  z.object({ action: z.literal("delete"), key: CredentialKeySchema }).strict(),
]);

export const ProposalInputSchema = z
  .object({
    services: z.array(ServiceChangeSchema).max(10, "at most 10 services").default([]),
    credentials: z.array(CredentialSlotSchema).max(10, "at most 10 credential slots").default([]),
    message: z.string().max(2000).default(""),
    user_message: z.string().max(2000).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.services.length === 0 && p.credentials.length === 0) ctx.addIssue({ code: "custom", path: ["services"], message: "a proposal needs at least one service or credential" });
    const names = new Set<string>();
    p.services.forEach((s, i) => {
      if (names.has(s.name)) ctx.addIssue({ code: "custom", path: ["services", i, "name"], message: `service "${s.name}" appears twice` });
      names.add(s.name);
      const fronting = s.action === "set" ? frontingHeaderOf(s.auth) : null;
      if (fronting) ctx.addIssue({ code: "custom", path: ["services", i, "auth"], message: `${fronting} routes a request at a front end; a service cannot set it` });
    });
    const keys = new Set<string>();
    p.credentials.forEach((c, i) => {
      if (keys.has(c.key)) ctx.addIssue({ code: "custom", path: ["credentials", i, "key"], message: `credential ${c.key} appears twice` });
      keys.add(c.key);
    });
  });

/** A credential slot as stored: an agent-supplied value is sealed at once and never echoed. */
export const StoredSlotSchema = z.discriminatedUnion("action", [
  z
    .object({
      action: z.literal("set"),
      key: CredentialKeySchema,
      type: z.enum(["static", "oauth", "source"]),
      description: z.string().max(500).optional(),
      /** With type "source": the reference, shown to the reviewer exactly as it will be stored. */
      source: z.string().max(1024).optional(),
      obtain: z.string().max(2048).optional(),
      obtain_instructions: z.string().max(2000).optional(),
      /** Sealed with kind "proposal-value"; present when the agent supplied the value. */
      sealed_value: z.base64().optional(),
      oauth: OAuthSlotSchema.optional(),
    })
    .strict(),
  z.object({ action: z.literal("delete"), key: CredentialKeySchema }).strict(),
]);

export const AuditEntrySchema = z.object({ at: IsoTimeSchema, action: z.enum(["filed", "approved", "rejected"]), by: z.string().max(200), note: z.string().max(2000).optional() }).strict();

export const ProposalSchema = z
  .object({
    id: z.number().int().positive(),
    status: z.enum(["pending", "applied", "rejected"]),
    created_at: IsoTimeSchema,
    expires_at: IsoTimeSchema,
    session_id: z.string().max(64).nullable(),
    services: z.array(ServiceChangeSchema),
    credentials: z.array(StoredSlotSchema),
    message: z.string().max(2000),
    user_message: z.string().max(2000).optional(),
    reason: z.string().max(2000).optional(),
    audit: z.array(AuditEntrySchema),
  })
  .strict();

export type ProposalInput = z.infer<typeof ProposalInputSchema>;
export type Proposal = z.infer<typeof ProposalSchema>;
export type StoredSlot = z.infer<typeof StoredSlotSchema>;
/** What people and agents see: `expired` is derived from expires_at, never stored. */
export type ProposalStatus = Proposal["status"] | "expired";
