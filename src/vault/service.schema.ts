// Services: which host gets which credential, and how (DESIGN "Services"). Fields that name
// credentials hold keys, never values. Parsed once at every boundary (CLI flags, -f files,
// proposals, the vault body) and trusted inside.
import { z } from "zod";
import { CredentialKeySchema, IsoTimeSchema } from "./credential.schema.ts";
import { formatHostPattern, parseHostPattern } from "./host.ts";

/** An RFC 9110 token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

// Headers a service may not set: they frame the request (smuggling) or belong to the proxy.
const RESERVED_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "proxy-authorization", "proxy-connection"]);

/**
 * Headers a front end (a CDN, a PaaS router, a reverse proxy) may route by instead of the
 * request's host: the proxy removes the agent's copies from every service request
 * (steps/headers.ts) and writes none from a service's template (steps/inject.ts), or a template
 * a proposal wrote (`X-Forwarded-Host: agent-app.example`) would hand the key to the agent's own
 * app behind the same front end (red team, session 7, HIGH). New services may not name them; a
 * stored one that does (from before) keeps loading, and the header is left out.
 */
export const FRONTING_HEADERS: ReadonlySet<string> = new Set(["x-forwarded-host", "forwarded", "x-forwarded-server", "x-host", "x-original-host", "x-original-url", "x-rewrite-url"]);

/** The first header of `auth` that a front end may route by (FRONTING_HEADERS), or null. */
export function frontingHeaderOf(auth: { readonly type: string; readonly header?: string; readonly headers?: Readonly<Record<string, string>> }): string | null {
  const names = auth.type === "api-key" && auth.header ? [auth.header] : auth.type === "custom" && auth.headers ? Object.keys(auth.headers) : [];
  return names.find((name) => FRONTING_HEADERS.has(name.toLowerCase())) ?? null;
}

export const HeaderNameSchema = z
  .string()
  .regex(HEADER_NAME, "header names are letters, digits and -")
  .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), "this header cannot be set by a service");

/** Text placed into a header: no control characters, so no header injection. */
const HeaderTextSchema = z
  .string()
  .max(1024)
  .regex(/^[^\x00-\x1f\x7f]*$/, "must not contain control characters or line breaks");

export const TEMPLATE_REFERENCE = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

const HeaderTemplateSchema = HeaderTextSchema.superRefine((text, ctx) => {
  const keys = [...text.matchAll(TEMPLATE_REFERENCE)].map((m) => m[1] ?? "");
  if (keys.length === 0) ctx.addIssue({ code: "custom", message: "must reference a credential as {{ KEY }}" });
  for (const key of keys) {
    if (!CredentialKeySchema.safeParse(key).success) {
      ctx.addIssue({ code: "custom", message: `{{ ${key} }} is not a valid credential key (UPPER_SNAKE_CASE)` });
    }
  }
});

export const AuthSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("bearer"), token: CredentialKeySchema }).strict(),
  z.object({ type: z.literal("basic"), username: CredentialKeySchema, password: CredentialKeySchema.optional() }).strict(),
  z
    .object({
      type: z.literal("api-key"),
      key: CredentialKeySchema,
      header: HeaderNameSchema.default("Authorization"),
      prefix: HeaderTextSchema.default(""),
    })
    .strict(),
  z
    .object({
      type: z.literal("custom"),
      // Names are checked here rather than as the record's key schema, whose failures zod reports
      // only as "Invalid key in record".
      headers: z.record(z.string(), HeaderTemplateSchema).superRefine((headers, ctx) => {
        const names = Object.keys(headers);
        if (names.length === 0 || names.length > 16) ctx.addIssue({ code: "custom", message: "give 1 to 16 headers" });
        for (const name of names) {
          const checked = HeaderNameSchema.safeParse(name);
          if (!checked.success) ctx.addIssue({ code: "custom", path: [name], message: checked.error.issues[0]!.message });
        }
      }),
    })
    .strict(),
  z
    .object({
      type: z.literal("query"),
      param: z.string().regex(/^[A-Za-z0-9_.~-]{1,128}$/, "query parameter names are letters, digits and _.~-"),
      key: CredentialKeySchema,
    })
    .strict(),
  z.object({ type: z.literal("passthrough") }).strict(),
  // The proxy signs with these keys (src/proxy/steps/sigv4.ts); region and signing name come from
  // the host unless given here.
  z
    .object({
      type: z.literal("aws-sigv4"),
      access_key_id: CredentialKeySchema,
      secret_key: CredentialKeySchema,
      session_token: CredentialKeySchema.optional(),
      region: z
        .string()
        .regex(/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/, "an AWS region looks like eu-west-1")
        .optional(),
      aws_service: z
        .string()
        .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "an AWS signing name is lowercase letters, digits and - (s3, sts, bedrock)")
        .optional(),
    })
    .strict(),
]);

export const AUTH_TYPES = ["bearer", "basic", "api-key", "custom", "query", "passthrough", "aws-sigv4"] as const;

export const ServiceNameSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "service names are lowercase letters, digits, - and _ (at most 64)");

/** A host pattern, normalized (lowercase host, port, path prefix) or refused with the reason. */
export const HostPatternSchema = z.string().transform((input, ctx) => {
  const parsed = parseHostPattern(input);
  if (typeof parsed === "string") {
    ctx.addIssue({ code: "custom", message: parsed });
    return z.NEVER;
  }
  return formatHostPattern(parsed);
});

/** What a user or a file gives: the stored service minus bookkeeping. */
export const ServiceInputSchema = z
  .object({
    name: ServiceNameSchema,
    host: HostPatternSchema,
    auth: AuthSchema,
    enabled: z.boolean().default(true),
    description: z.string().max(500).optional(),
  })
  .strict();

export const ServiceSchema = ServiceInputSchema.extend({ created_at: IsoTimeSchema }).strict();

export type Auth = z.infer<typeof AuthSchema>;
export type AuthType = Auth["type"];
export type ServiceInput = z.infer<typeof ServiceInputSchema>;
export type Service = z.infer<typeof ServiceSchema>;

/** Every credential key a service's auth refers to, in order, without repeats. */
export function credentialKeysOf(auth: Auth): string[] {
  switch (auth.type) {
    case "bearer":
      return [auth.token];
    case "basic":
      return auth.password ? [auth.username, auth.password] : [auth.username];
    case "api-key":
    case "query":
      return [auth.key];
    case "custom":
      return [...new Set(Object.values(auth.headers).flatMap((t) => [...t.matchAll(TEMPLATE_REFERENCE)].map((m) => m[1] ?? "")))];
    case "passthrough":
      return [];
    case "aws-sigv4":
      return auth.session_token ? [auth.access_key_id, auth.secret_key, auth.session_token] : [auth.access_key_id, auth.secret_key];
  }
}
