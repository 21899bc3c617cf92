// The `_method` parameters a request carries, read the way the frameworks that honour them read
// them (Rails' Rack::MethodOverride, Laravel, Symfony, express method-override): in the query, in
// a form body (urlencoded, multipart, or a POST with no Content-Type, which Rack reads as a form)
// and at the top of a JSON object (Laravel's input). Pure: the policy step (steps/policy.ts)
// refuses a request whose `_method` names another method than the one its rules judged.
//
// The name is read as PHP reads it: percent-escapes and `+` undone, leading spaces dropped, and
// ` `, `.` and `[` taken for `_` (PHP turns `?.method=DELETE` into `$_GET['_method']`); any case,
// and `_method[...]` too. The override headers' names count as parameters too (ASP.NET reads
// X-HTTP-Method-Override from the form and the query). Every occurrence counts: servers differ on
// first or last.

/** Percent-escapes and `+` undone, byte-wise, never throwing on a stray `%`. */
function formDecode(text: string): string {
  const plus = text.replace(/\+/g, " ");
  if (!plus.includes("%")) return plus;
  const bytes = Buffer.from(
    plus.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
    "latin1",
  );
  return bytes.toString("utf8");
}

/**
 * True for a parameter name a server may read as `_method` (`_METHOD`, `%5Fmethod`, `.method`,
 * `_method[]`), or as another override: `X-HTTP-Method-Override`, Salesforce's `_HttpMethod`.
 */
export function isMethodName(rawName: string, decoded = false): boolean {
  const name = (decoded ? rawName : formDecode(rawName)).replace(/^\s+/, "").toLowerCase();
  return /^(?:[ ._[](?:http)?method|x[-_.]http[-_.]method(?:[-_.]override)?|x[-_.]method[-_.]override)(?:\[|$)/.test(name);
}

/** The method a `_method` value names, as a server reads it: trimmed, upper-case. */
function methodOf(value: string, decoded = false): string {
  return (decoded ? value : formDecode(value)).trim().toUpperCase();
}

/** `_method` values of `a=1&b=2` text (a query or a urlencoded body); `;` separates too (older Rack). */
export function formMethods(text: string): string[] {
  const found: string[] = [];
  for (const pair of text.split(/[&;]/)) {
    const eq = pair.indexOf("=");
    const name = eq < 0 ? pair : pair.slice(0, eq);
    if (isMethodName(name)) found.push(methodOf(eq < 0 ? "" : pair.slice(eq + 1)));
  }
  return found;
}

/**
 * `_method` values in the query of a path (`/x?_method=DELETE`); none without a query. A `#` does
 * not end it here: a target has no fragment (RFC 9112 3.2), and a server may not cut one off.
 */
export function queryMethods(path: string): string[] {
  const q = path.indexOf("?");
  return q < 0 ? [] : formMethods(path.slice(q + 1));
}

export type BodyKind = "form" | "multipart" | "json";

/**
 * How a framework may read `_method` from a body, by its Content-Type: every type the header names
 * counts (Rack reads the first of `a, b`; repeated headers arrive joined), none when no type is one.
 * JSON is any type with `json` in it, in any case and anywhere, parameters too: Laravel's isJson()
 * only asks whether the header contains `/json` or `+json` (`text/json`, `text/plain; x=/json`).
 * The policy step also reads every body as JSON and as a form whatever its type (sniffedKinds).
 */
export function bodyKinds(contentType: string | string[] | undefined, method: string): BodyKind[] {
  const text = Array.isArray(contentType) ? contentType.join(",") : (contentType ?? "");
  const kinds = new Set<BodyKind>();
  for (const part of text.split(",")) {
    const type = part.split(";")[0]!.trim().toLowerCase();
    if (type === "application/x-www-form-urlencoded") kinds.add("form");
    if (type === "multipart/form-data") kinds.add("multipart");
  }
  if (/json/i.test(text)) kinds.add("json");
  // Rack reads the body of a POST without a Content-Type as a form.
  if (text.trim() === "" && method.toUpperCase() === "POST") kinds.add("form");
  return [...kinds];
}

/**
 * The readings of a body looked at under rules that name methods: what its type says, and JSON and
 * form whatever it says, since frameworks differ on which types they parse (body-parser can be set
 * to parse any type as JSON). A body that is neither carries no `_method` in those readings.
 */
export function sniffedKinds(contentType: string | string[] | undefined, method: string): BodyKind[] {
  return [...new Set<BodyKind>([...bodyKinds(contentType, method), "json", "form"])];
}

/** How many keys anywhere in JSON text are a method name, their escapes undone. */
function jsonKeyCount(text: string): number {
  let count = 0;
  for (const m of text.matchAll(/"((?:[^"\\]|\\.)*)"\s*:/g)) {
    try {
      if (isMethodName(JSON.parse(`"${m[1]}"`) as string, true)) count++;
    } catch {
      // not a key after all (text inside a string); the parsed object decides
    }
  }
  return count;
}

/**
 * `_method` values in a body (content codings undone). A multipart part named `_method` counts as
 * `?` (its value is not read: such a part is refused whatever it says); a form or JSON value is
 * the method it names. A body that is not what its type says carries none (the server cannot read it either).
 */
export function bodyMethods(body: Buffer, kind: BodyKind): string[] {
  if (kind === "form") return formMethods(body.toString("latin1"));
  if (kind === "json") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      return [];
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return [];
    const found = Object.entries(parsed)
      .filter(([name]) => isMethodName(name, true))
      .map(([, value]) => (typeof value === "string" ? methodOf(value, true) : "?"));
    // JSON.parse keeps the last of repeated keys, a server's parser may keep the first: a key
    // spelt more often than the parsed object shows (repeated, or deeper down) counts as `?`.
    return jsonKeyCount(body.toString("utf8")) > found.length ? [...found, "?"] : found;
  }
  // Each part's name in its Content-Disposition, quoted or not, RFC 2231 (`name*=utf-8''%5Fmethod`) or not.
  const found: string[] = [];
  for (const line of body.toString("latin1").split(/\r?\n/)) {
    if (!/^\s*content-disposition\s*:/i.test(line)) continue;
    for (const m of line.matchAll(/(?:^|[;\s])name(\*?)\s*=\s*("[^"]*"|[^;\s]*)/gi)) {
      let name = m[2]!.replace(/^"|"$/g, "");
      if (m[1] === "*") name = name.replace(/^[^']*'[^']*'/, "");
      if (isMethodName(name.replace(/\+/g, "%2B"))) found.push("?");
    }
  }
  return found;
}
