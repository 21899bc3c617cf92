// Turns a zod failure into the one line a person can act on: which field is missing or unknown,
// where (its path, so a file reader can add the line), and the nearest known name when it looks
// like a typo: `auth.token is missing (did you mean "tokn" → "token"?)` instead of zod's
// "expected string, received undefined". Only names go into the text, never a field's value.
import { type z } from "zod";
import { formatIssuePath } from "../shared/errors.ts";
import { didYouMean, nearest } from "../shared/suggest.ts";

export interface Problem {
  /** Where in the input, as zod gives it (for a file's line number). */
  readonly path: readonly PropertyKey[];
  readonly text: string;
}

type Issue = z.core.$ZodIssue;

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let at = input;
  for (const part of path) {
    if (at === null || typeof at !== "object") return undefined;
    at = (at as Record<PropertyKey, unknown>)[part];
  }
  return at;
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "number" && Number.isNaN(value)) return "NaN";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

/** The object keys a schema accepts at `path` of `input` (unwrapping optional, default, pipes, lists, tagged unions). */
function knownKeys(schema: z.ZodType, input: unknown, path: readonly PropertyKey[]): string[] {
  // zod 4 exposes its definitions on `_zod.def`; anything unexpected yields no suggestion.
  let node = (schema as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
  let value = input;
  const unwrap = () => {
    for (let i = 0; i < 10; i++) {
      if ((node.type === "optional" || node.type === "default" || node.type === "nullable") && node.innerType) node = (node.innerType as { _zod: { def: Record<string, unknown> } })._zod.def;
      else if (node.type === "pipe" && node.in) node = (node.in as { _zod: { def: Record<string, unknown> } })._zod.def;
      else if (node.type === "union" && Array.isArray(node.options) && typeof node.discriminator === "string" && value && typeof value === "object") {
        const tag = (value as Record<string, unknown>)[node.discriminator];
        const option = (node.options as { _zod: { def: Record<string, unknown> } }[]).find((o) => {
          const field = (o._zod.def.shape as Record<string, { _zod: { def: Record<string, unknown> } }> | undefined)?.[node.discriminator as string];
          return Array.isArray(field?._zod.def.values) && (field._zod.def.values as unknown[]).includes(tag);
        });
        if (!option) return;
        node = option._zod.def;
      } else return;
    }
  };
  for (const part of path) {
    unwrap();
    if (node.type === "object" && typeof part === "string") node = (node.shape as Record<string, { _zod: { def: Record<string, unknown> } }>)[part]?._zod.def ?? {};
    else if (node.type === "array" && typeof part === "number") node = (node.element as { _zod: { def: Record<string, unknown> } })._zod.def;
    else if (node.type === "record") node = (node.valueType as { _zod: { def: Record<string, unknown> } })._zod.def;
    else return [];
    value = value && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[part] : undefined;
  }
  unwrap();
  return node.type === "object" ? Object.keys(node.shape as object) : [];
}

/** The field's dotted name; "" for the whole input (the caller's label names it). */
function where(path: readonly PropertyKey[], prefix: readonly PropertyKey[]): string {
  const full = [...prefix, ...path];
  return full.length === 0 ? "" : formatIssuePath(full);
}

/** `name: text`, or the text alone for the whole input. */
function at(name: string, text: string): string {
  return name === "" ? text : `${name}: ${text}`;
}

/**
 * The first problem of a failed parse, worded for a person. A missing field and an unknown one
 * beside it that is spelled nearly the same are reported together, as the typo they are.
 * `prefix` is where `input` sits in a larger document (e.g. ["services", 0]).
 */
export function describeProblem(error: z.ZodError, input: unknown, schema: z.ZodType, prefix: readonly PropertyKey[] = []): Problem {
  const issues = error.issues as Issue[];
  const unknownAt = (path: readonly PropertyKey[]) =>
    issues.filter((i) => i.code === "unrecognized_keys" && formatIssuePath(i.path) === formatIssuePath(path)).flatMap((i) => (i as { keys: string[] }).keys);
  // A missing field with a near-miss beside it is the most useful thing to say, wherever it sits.
  for (const issue of issues) {
    if (issue.code !== "invalid_type" || valueAt(input, issue.path) !== undefined) continue;
    const field = issue.path[issue.path.length - 1];
    if (typeof field !== "string") continue;
    const typo = nearest(field, unknownAt(issue.path.slice(0, -1)));
    if (typo !== undefined) return { path: [...prefix, ...issue.path.slice(0, -1), typo], text: `${where(issue.path, prefix)} is missing (did you mean "${typo}" → "${field}"?)` };
  }
  const issue = issues[0]!;
  const path = [...prefix, ...issue.path];
  switch (issue.code) {
    case "invalid_type": {
      const value = valueAt(input, issue.path);
      if (value === undefined) return { path, text: `${where(issue.path, prefix)} is missing` };
      const name = where(issue.path, prefix);
      // z.number().int() given 1.5: zod says "expected int, received number".
      if (issue.expected === "int" && typeof value === "number") return { path, text: `${name === "" ? "" : `${name} `}must be a whole number` };
      return {
        path,
        text: `${name === "" ? "" : `${name} `}must be ${issue.expected === "array" ? "a list" : issue.expected === "object" ? "an object" : `a ${issue.expected}`}, not ${describeType(value)}`,
      };
    }
    case "too_small":
    case "too_big": {
      // zod's "Too small: expected number to be >=1", as words; the bound, never the value.
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const side = issue.code === "too_small" ? (issue.inclusive === false ? "more than" : "at least") : issue.inclusive === false ? "less than" : "at most";
      const name = where(issue.path, prefix);
      const subject = name === "" ? "" : `${name} `;
      if (issue.origin === "number" || issue.origin === "int") return { path, text: `${subject}must be ${side} ${String(bound)}` };
      if (issue.origin === "string") return { path, text: `${subject}must be ${side} ${String(bound)} character${Number(bound) === 1 ? "" : "s"} long` };
      if (issue.origin === "array") return { path, text: `${subject}must have ${side} ${String(bound)} item${Number(bound) === 1 ? "" : "s"}` };
      return { path, text: at(name, issue.message) };
    }
    case "unrecognized_keys": {
      const key = issue.keys[0]!;
      const known = knownKeys(schema, input, issue.path);
      const extra = issue.keys.length > 1 ? ` (and ${issue.keys.length - 1} more)` : "";
      return {
        path: [...path, key],
        text: at(where(issue.path, prefix), `unknown field "${key.slice(0, 60)}"${didYouMean(key, known)}${extra}${known.length > 0 && !nearest(key, known) ? `; known: ${known.join(", ")}` : ""}`),
      };
    }
    case "invalid_union": {
      const options = (issue as { options?: unknown[] }).options;
      const value = valueAt(input, issue.path);
      if (Array.isArray(options) && options.every((o) => typeof o === "string")) {
        if (value === undefined) return { path, text: `${where(issue.path, prefix)} is missing (one of ${options.join(", ")})` };
        const shown = typeof value === "string" ? `"${value.slice(0, 60)}"` : describeType(value);
        return { path, text: `${where(issue.path, prefix)} ${shown} is not one of ${options.join(", ")}${typeof value === "string" ? didYouMean(value, options as string[]) : ""}` };
      }
      return { path, text: at(where(issue.path, prefix), issue.message) };
    }
    case "invalid_value": {
      const values = issue.values.filter((v): v is string => typeof v === "string");
      const value = valueAt(input, issue.path);
      if (values.length > 0 && typeof value === "string") return { path, text: `${where(issue.path, prefix)} "${value.slice(0, 60)}" is not one of ${values.join(", ")}${didYouMean(value, values)}` };
      return { path, text: at(where(issue.path, prefix), issue.message) };
    }
    default:
      return { path, text: at(where(issue.path, prefix), issue.message) };
  }
}
