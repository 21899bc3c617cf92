// The kinds of sealed values (docs/vault-format.md section 6): each sealed value's associated data
// names its kind, so a value moved to another kind of record does not open. One list, so that key
// rotation (vault.ts) reseals every kind there is.
export { CREDENTIAL_KIND } from "./credential.schema.ts";
export const PROPOSAL_VALUE_KIND = "proposal-value";
export const CA_KEY_KIND = "ca-key";
/** The CA key is not in a vault: its scope is this. */
export const CA_KEY_SCOPE = "-";
/** The audit trail's MAC key (audit.ts): one per data directory, in no vault. */
export const AUDIT_KEY_KIND = "audit-key";
