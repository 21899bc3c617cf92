// Held requests (DESIGN `agent-vault held`; docs/vault-format.md section 5): a request an `approve`
// entry of a policy holds until a person answers. The record lives in the sealed vault state, so
// an answer is only as forgeable as the state's MAC: whoever writes one holds the data key (the
// proxy when it holds, `held allow|deny` and the TUI when they answer), never the agent.
import { z } from "zod";
import { IsoTimeSchema } from "./credential.schema.ts";

/** Held requests waiting at once per vault; past this a new one is refused at once (a bound on the state's size). */
export const MAX_PENDING_HELD = 50;
/** Answered records are kept this long (for `held list` and `status`), then dropped. */
export const HELD_KEEP_MS = 3_600_000;
/** The body preview a person sees: at most this many characters, made display-safe. */
export const HELD_PREVIEW_CHARS = 512;

export const HeldStatusSchema = z.enum(["pending", "allowed", "denied", "timeout"]);

export const HeldSchema = z
  .object({
    id: z.number().int().positive(),
    status: HeldStatusSchema,
    /**
     * 128 random bits the holding proxy chose and keeps in memory: it takes an answer only from a
     * record that carries its nonce, so no record in an older copy of the state (a replayed
     * `allowed`) can stand for a request held later.
     */
    nonce: z.string().regex(/^[0-9a-f]{32}$/),
    /** The session (s_...) or agent (agt_...) whose request it is. */
    principal: z.string().max(64),
    session: z.string().max(64).nullable(),
    agent: z.string().max(64).nullable(),
    method: z.string().max(16),
    host: z.string().max(253),
    port: z.number().int().min(1).max(65535),
    path: z.string().max(2048),
    /** The approve entry that held it, as written (`POST /repos/*\/merges`). */
    rule: z.string().max(600),
    /** SHA-256 of the body as the agent sent it (before placeholders are replaced): the approval binds it. */
    body_sha256: z.string().regex(/^[0-9a-f]{64}$/),
    body_bytes: z.number().int().nonnegative(),
    /** The body's first characters, display-safe (never a credential value: the guard refused those first). */
    preview: z.string().max(HELD_PREVIEW_CHARS * 10),
    created_at: IsoTimeSchema,
    expires_at: IsoTimeSchema,
    answered_at: IsoTimeSchema.nullable(),
    /** `cli` or `tui` (and the OS user): who answered. */
    answered_by: z.string().max(200).nullable(),
    reason: z.string().max(500).nullable(),
    /** Allowed for the rest of the session: later requests of the same method, host and rule go without asking. */
    for_session: z.boolean(),
  })
  .strict();

export type Held = z.infer<typeof HeldSchema>;
export type HeldStatus = z.infer<typeof HeldStatusSchema>;
