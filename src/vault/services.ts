// Services of one vault: add, remove, enable or disable, and set many from a file. Every credential
// key a service names must exist in the vault when the service is saved.
import { z } from "zod";
import { AgentVaultError } from "../shared/errors.ts";
import { describeProblem } from "./issues.ts";
import { credentialKeysOf, frontingHeaderOf, type Service, type ServiceInput, ServiceInputSchema } from "./service.schema.ts";
import { type VaultRecord } from "./state.schema.ts";
import { type VaultStore } from "./vault.ts";
import { findVault } from "./vaults.ts";
import { didYouMean } from "../shared/suggest.ts";

/** Parses untrusted service input; the error names the field (and a near-miss) and the service. */
export function parseServiceInput(input: unknown, where = "service", prefix: readonly PropertyKey[] = []): ServiceInput {
  const parsed = ServiceInputSchema.safeParse(input);
  if (!parsed.success) {
    const problem = describeProblem(parsed.error, input, ServiceInputSchema, prefix);
    throw new AgentVaultError("invalid_argument", where ? `${where}: ${problem.text}` : problem.text, { details: { path: problem.path } });
  }
  const fronting = frontingHeaderOf(parsed.data.auth);
  if (fronting) {
    // The header's own place, so a file's error names its line, not the `auth:` line above it.
    const at = parsed.data.auth.type === "custom" ? ["auth", "headers", fronting] : ["auth", "header"];
    throw new AgentVaultError("invalid_argument", `${where ? `${where}: ` : ""}${at.join(".")}: ${fronting} routes a request at a front end; a service cannot set it`, {
      hint: "leave it out: the proxy sends every request with the service's own host and removes such headers",
      details: { path: [...prefix, ...at] },
    });
  }
  return parsed.data;
}

/**
 * A file for `service set -f`: a list of services, or `{ "services": [...] }`. `locate` turns a
 * path in the document into where it is (`services.yaml:12`); by default the file's name.
 */
export function parseServiceFile(data: unknown, file: string, locate: (path: readonly PropertyKey[]) => string = () => file): ServiceInput[] {
  const isList = Array.isArray(data);
  const wrapped = isList
    ? undefined
    : z
        .object({ services: z.array(z.unknown()) })
        .strict()
        .safeParse(data);
  const list = isList ? data : wrapped?.data?.services;
  if (!list) {
    const problem = data !== null && typeof data === "object" && wrapped?.error ? describeProblem(wrapped.error, data, z.object({ services: z.array(z.unknown()) }).strict()) : null;
    throw new AgentVaultError("invalid_argument", `${problem ? locate(problem.path) : file}: expected a list of services, or an object with a "services" list${problem ? ` (${problem.text})` : ""}`);
  }
  if (list.length > 500) throw new AgentVaultError("invalid_argument", `${file}: at most 500 services`);
  const services = list.map((item: unknown, i: number) => {
    // Named services[i] either way; the path into a bare list starts at the index.
    try {
      return parseServiceInput(item, "", ["services", i]);
    } catch (error) {
      if (!(error instanceof AgentVaultError)) throw error;
      const named = (error.details?.path as PropertyKey[] | undefined) ?? ["services", i];
      const path = isList ? named.slice(1) : named;
      throw new AgentVaultError("invalid_argument", `${locate(path)}: ${error.message}`, { details: { path } });
    }
  });
  const names = new Set<string>();
  for (const s of services) {
    if (names.has(s.name)) throw new AgentVaultError("invalid_argument", `${file}: service "${s.name}" appears twice`);
    names.add(s.name);
  }
  return services;
}

function checkKeysExist(vault: VaultRecord, service: ServiceInput): void {
  const missing = credentialKeysOf(service.auth).filter((k) => !(k in vault.credentials));
  if (missing.length > 0) {
    throw new AgentVaultError("credential_not_found", `service "${service.name}" uses ${missing.join(", ")}, which vault "${vault.name}" does not have`, {
      hint: `set it first: agent-vault vault credential set ${missing[0]}=-`,
    });
  }
}

function toService(input: ServiceInput, createdAt: string): Service {
  return { ...input, created_at: createdAt };
}

export function findService(vault: VaultRecord, name: string): Service {
  const service = vault.services.find((s) => s.name === name);
  if (!service)
    throw new AgentVaultError(
      "service_not_found",
      `no service "${name}" in vault "${vault.name}"${didYouMean(
        name,
        vault.services.map((s) => s.name),
      )}`,
    );
  return service;
}

export async function addService(store: VaultStore, vaultName: string, input: ServiceInput): Promise<Service> {
  return store.update((body) => {
    const vault = findVault(body, vaultName);
    if (vault.services.some((s) => s.name === input.name)) {
      throw new AgentVaultError("service_exists", `vault "${vault.name}" already has a service "${input.name}"`);
    }
    checkKeysExist(vault, input);
    const service = toService(input, new Date().toISOString());
    vault.services.push(service);
    store.audit.record({ kind: "service_changed", vault: vault.name, services: [service.name], host: service.host, detail: "added" });
    return service;
  });
}

/** Upserts by name, keeping declaration order; with `replace`, the file becomes the whole list. */
export async function setServices(store: VaultStore, vaultName: string, inputs: readonly ServiceInput[], replace: boolean): Promise<{ added: string[]; updated: string[]; removed: string[] }> {
  return store.update((body) => {
    const vault = findVault(body, vaultName);
    for (const input of inputs) checkKeysExist(vault, input);
    const now = new Date().toISOString();
    const byName = new Map(vault.services.map((s) => [s.name, s]));
    const added: string[] = [];
    const updated: string[] = [];
    const next: Service[] = replace ? [] : [...vault.services];
    for (const input of inputs) {
      const existing = byName.get(input.name);
      const service = toService(input, existing?.created_at ?? now);
      const index = next.findIndex((s) => s.name === input.name);
      if (index === -1) next.push(service);
      else next[index] = service;
      (existing ? updated : added).push(input.name);
    }
    const keep = new Set(next.map((s) => s.name));
    const removed = vault.services.filter((s) => !keep.has(s.name)).map((s) => s.name);
    vault.services = next;
    for (const [detail, names] of [
      ["added", added],
      ["updated", updated],
      ["removed", removed],
    ] as const) {
      if (names.length > 0) store.audit.record({ kind: "service_changed", vault: vault.name, services: names.slice(0, 1000), detail });
    }
    return { added, updated, removed };
  });
}

export async function removeService(store: VaultStore, vaultName: string, name: string): Promise<void> {
  await store.update((body) => {
    const vault = findVault(body, vaultName);
    findService(vault, name);
    vault.services = vault.services.filter((s) => s.name !== name);
    store.audit.record({ kind: "service_changed", vault: vault.name, services: [name], detail: "removed" });
  });
}

export async function setServiceEnabled(store: VaultStore, vaultName: string, name: string, enabled: boolean): Promise<void> {
  await store.update((body) => {
    findService(findVault(body, vaultName), name).enabled = enabled;
    store.audit.record({ kind: "service_changed", vault: vaultName, services: [name], detail: enabled ? "enabled" : "disabled" });
  });
}
