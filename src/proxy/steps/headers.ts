// Step 4: header hygiene. Proxy credentials and hop-by-hop headers never go upstream; for a
// matched service the agent's own auth (Authorization, the service's key header, the query
// parameter) is removed so that only the injected credential reaches the API.
import { FRONTING_HEADERS } from "../../vault/service.schema.ts";
import { type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

// RFC 9110 7.6.1 hop-by-hop headers, plus the proxy's own.
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "http2-settings"];

/**
 * Removes every header whose name, `_` read as `-`, is one of `names` but not spelt as it (the
 * ones spelt exactly are handled by the caller; Host is ours by then): CGI and Rack
 * servers that keep underscore headers map `X_Api_Key` and `X-Api-Key` to the same variable, and
 * may take the agent's where ours was injected.
 */
function stripUnderscoreTwins(flow: Flow, names: readonly string[]): void {
  const dashed = (name: string) => name.replace(/_/g, "-");
  // Names and headers without a `_` cannot be twins of each other (each is its own dashed form):
  // the common request has no `_` anywhere, and costs one scan of each name.
  const namesHaveUnderscore = names.some((n) => n.includes("_"));
  for (const name of Object.keys(flow.headers)) {
    if (!namesHaveUnderscore && !name.includes("_")) continue;
    if (names.includes(name)) continue;
    const twin = dashed(name);
    if (names.some((n) => dashed(n) === twin)) delete flow.headers[name];
  }
}

export function stripHeaders(flow: Flow, _ctx: StepContext): void {
  const isUpgrade = typeof flow.headers.upgrade === "string" && /websocket/i.test(flow.headers.upgrade);
  const connection = String(flow.headers.connection ?? "");
  for (const name of connection.split(",").map((n) => n.trim().toLowerCase())) {
    if (name && name !== "upgrade") delete flow.headers[name];
  }
  for (const name of HOP_BY_HOP) delete flow.headers[name];
  stripUnderscoreTwins(flow, HOP_BY_HOP);
  if (isUpgrade) {
    flow.headers.connection = "Upgrade";
    flow.headers.upgrade = "websocket";
  }
  // The explicit proxy's Authorization is the session token: it never leaves.
  if (flow.via === "explicit") {
    delete flow.headers.authorization;
    delete flow.headers["x-agent-vault-scrub"];
  }
  const service = flow.service;
  if (!service || service.auth.type === "passthrough") return;
  // The credential goes to the host the service names, never to one the agent wrote in Host: a
  // front end that routes by Host (a CDN, a PaaS) would hand it to the agent's own app (fronting).
  flow.headers.host = flow.port === 443 || flow.port === 80 ? flow.host : `${flow.host}:${flow.port}`;
  for (const name of FRONTING_HEADERS) delete flow.headers[name];
  delete flow.headers.authorization;
  const auth = service.auth;
  if (auth.type === "api-key") delete flow.headers[auth.header.toLowerCase()];
  if (auth.type === "custom") for (const name of Object.keys(auth.headers)) delete flow.headers[name.toLowerCase()];
  stripUnderscoreTwins(flow, [
    "host",
    ...FRONTING_HEADERS,
    "authorization",
    ...(auth.type === "api-key" ? [auth.header.toLowerCase()] : []),
    ...(auth.type === "custom" ? Object.keys(auth.headers).map((name) => name.toLowerCase()) : []),
  ]);
  if (auth.type === "query") flow.path = withoutQueryParam(flow.path, auth.param);
}

export function withoutQueryParam(path: string, param: string): string {
  const q = path.indexOf("?");
  if (q === -1) return path;
  const kept = path
    .slice(q + 1)
    .split("&")
    .filter((pair) => {
      const name = pair.split("=")[0] ?? "";
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, " "));
      } catch {
        // keep the raw name
      }
      return decoded !== param;
    });
  return kept.length === 0 ? path.slice(0, q) : `${path.slice(0, q)}?${kept.join("&")}`;
}
