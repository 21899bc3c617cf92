// Placeholders to real values (DESIGN "Placeholders"), after the guard (which judged what the
// agent wrote: a placeholder is not a value) and the OAuth refresh (so a fresh token goes in), and
// before inject. Only the placeholders of the session this request authenticated as, and only
// those of the credentials the matched service names, are replaced: a placeholder sent anywhere
// else is left as it is. It is not a secret, and leaving it is what keeps a value from following
// it to a host the human never tied the credential to (refusing instead would only break an agent
// that writes its .env into a commit).
//
// Headers and the query are replaced here; the body and WebSocket messages by the exchange and the
// WebSocket policy, through flow.substitutions. The URL path is left alone: it is logged
// (shared/log.ts keeps it without the query), and a value must never reach the log.
import { isCredentialField, isCredentialName } from "../substitute.ts";
import { credentialKeysOf } from "../../vault/service.schema.ts";
import { credentialValueFor } from "./sources.ts";
import { derivePlaceholder, placeholderKeyOf, type ShapeName, shapesFor } from "../../vault/placeholders.ts";
import { type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

/** A value that would break the request line or a header is never written into one. */
const UNSAFE_IN_HEADER = /[\r\n\0]/;

/** Placeholders made so far (up to 4096, then started afresh): 3–14 µs each saved per request. */
const made = new Map<string, string>();
const MAX_MADE = 4096;

/** A short name per placeholder key, for the cache's ids (not the key's bytes on every request). */
const keyIds = new WeakMap<Buffer, number>();
let nextKeyId = 0;

function placeholderFor(key: Buffer, principalId: string, name: string, shape: ShapeName): string {
  // Keyed by the placeholder key too: a new data key makes new placeholders.
  let keyId = keyIds.get(key);
  if (keyId === undefined) keyIds.set(key, (keyId = nextKeyId++));
  const id = `${keyId}\0${principalId}\0${name}\0${shape}`;
  let placeholder = made.get(id);
  if (placeholder === undefined) {
    if (made.size >= MAX_MADE) made.clear();
    made.set(id, (placeholder = derivePlaceholder(key, principalId, name, shape)));
  }
  return placeholder;
}

/** The placeholders of this flow's session for the credentials its service names (no values). */
export function placeholdersOf(flow: Flow, ctx: StepContext): { key: string; placeholder: string }[] {
  const { service, vault, principal } = flow;
  if (!service || !vault || !principal) return [];
  // AWS keys are only ever signed with (steps/sigv4.ts): a placeholder of the secret in a body or
  // header must stay a placeholder, or an S3 object the agent writes would carry the real secret.
  if (service.auth.type === "aws-sigv4") return [];
  // Follows the store's data key (a master-password change gives new placeholders).
  const key = placeholderKeyOf(ctx.store);
  const out: { key: string; placeholder: string }[] = [];
  for (const name of credentialKeysOf(service.auth)) {
    if (!(name in vault.credentials)) continue;
    for (const shape of shapesFor(name, vault.services)) out.push({ key: name, placeholder: placeholderFor(key, principal.id, name, shape) });
  }
  return out;
}

export function substitutePlaceholders(flow: Flow, ctx: StepContext): void {
  const found = placeholdersOf(flow, ctx);
  if (found.length === 0) return;
  const vault = flow.vault!;
  const values = new Map<string, string | null>();
  // Opened only when a placeholder is there, and kept in this closure, never on the flow. A value
  // that cannot be opened (an OAuth credential not connected) replaces nothing: inject, next,
  // answers the request with the reason.
  const valueOf = (key: string): string | null => {
    if (!values.has(key)) {
      try {
        values.set(key, credentialValueFor(ctx, flow.vault ?? vault, key));
      } catch {
        values.set(key, null);
      }
    }
    return values.get(key)!;
  };
  const used = (key: string) => {
    if (!flow.injected.includes(key)) flow.injected.push(key);
  };
  for (const [name, header] of Object.entries(flow.headers)) {
    // Only a header that carries a credential (Authorization, X-Api-Key, X-Token, …), as in bodies
    // and the query: a service may store another header's value (a title, a file name, a
    // User-Agent in an audit log) where the agent can read it back unscrubbed, or decode it so the
    // value's first characters are swallowed (`%a4…`) and a cut echo of the rest is not scrubbed.
    if (header === undefined) continue;
    // The name is read only for a header that holds a placeholder (most hold none).
    const values = Array.isArray(header) ? header : [header];
    if (!values.some((text) => found.some(({ placeholder }) => text.includes(placeholder))) || !isCredentialName(name)) continue;
    const replaced = values.map((text) => {
      for (const { key, placeholder } of found) {
        if (!text.includes(placeholder)) continue;
        const value = valueOf(key);
        if (value === null || UNSAFE_IN_HEADER.test(value)) continue;
        used(key);
        text = text.replaceAll(placeholder, value);
      }
      return text;
    });
    flow.headers[name] = Array.isArray(header) ? replaced : replaced[0];
  }
  const q = flow.path.indexOf("?");
  if (q >= 0) {
    let query = flow.path.slice(q);
    for (const { key, placeholder } of found) {
      const value = query.includes(placeholder) ? valueOf(key) : null;
      if (value === null) continue;
      // Only as a credential-named parameter (`?access_token=PH`), as in bodies (substitute.ts).
      const parts = query.split(placeholder);
      let rebuilt = parts[0]!;
      for (let i = 1; i < parts.length; i++) {
        // The whole value of the parameter: what follows starts another one, or the fragment.
        const next = parts[i]!.charAt(0);
        const isField = isCredentialField(rebuilt.slice(1).slice(-96), "form") && (next === "" || next === "&" || next === "#");
        if (isField) used(key);
        rebuilt += (isField ? encodeURIComponent(value) : placeholder) + parts[i];
      }
      query = rebuilt;
    }
    flow.path = flow.path.slice(0, q) + query;
  }
  flow.substitutions = () =>
    found.flatMap(({ key, placeholder }) => {
      const value = valueOf(key);
      return value === null ? [] : [{ key, placeholder, value }];
    });
}
