// One request as it moves through the pipeline. Steps read and change it; a step that answers
// early sets `answer` and later steps leave the flow alone. No secret is ever stored on a flow
// except inside the outbound headers and path that inject writes.
import { type Answer, statusOf } from "../shared/answers.ts";
import { type ErrorCode } from "../shared/errors.ts";
import { type Principal } from "../vault/principals.ts";
import { type Service } from "../vault/service.schema.ts";
import { type VaultRecord } from "../vault/state.schema.ts";
import { type Dial } from "../net/netguard.ts";
import { type Pattern } from "./secrets.ts";

export type Headers = Record<string, string | string[] | undefined>;

/** An answer given instead of forwarding; its status comes from ERROR_TABLE (shared/answers.ts). */
export interface EarlyAnswer extends Answer {
  readonly status: number;
}

export interface Flow {
  readonly id: string;
  readonly startedAt: number;
  /** How the agent reached us: a CONNECT tunnel, a plain absolute-form request, or /proxy/. */
  readonly via: "tunnel" | "http" | "explicit";
  readonly host: string;
  readonly port: number;
  readonly method: string;
  /** Path and query as sent upstream; inject may add a query parameter. */
  path: string;
  /** Lower-case header names; the outbound headers. */
  headers: Headers;
  /** The credential presented: from CONNECT, Proxy-Authorization, or the /proxy/ bearer. */
  credential: string | undefined;
  /** Who is asking, once authenticate has run. */
  principal?: Principal;
  vault?: VaultRecord;
  service?: Service | null;
  dial?: Dial;
  answer?: EarlyAnswer;
  /** Names of the credentials injected (for the log; never values). */
  injected: string[];
  /** OAuth credentials injected, with the record version they came from (for a forced refresh). */
  oauthUsed: { key: string; version: string }[];
  /** Path and headers as they were before inject, so a retry after a refresh can inject again. */
  beforeInject?: { path: string; headers: Headers };
  /**
   * Rests of values whose first piece ended a field of this request or of the previous one to
   * this host (the guard's; never a whole value): the body is searched for them too.
   */
  guardRests?: readonly Pattern[];
  /** The credential key the exfiltration guard found (for the log; never the value). */
  blocked?: string;
  /** For the log of a request that went through anyway: a source serving its last good value. */
  note?: string;
  /** On CONNECT: read the tunnel (intercept) or pass it through (steps/route.ts). */
  route?: "intercept" | "tunnel";
  /**
   * On CONNECT, for an intercepted tunnel whose requests the vault would send on (a service covers
   * the host, or unmatched hosts are guarded): open the upstream connection while the agent's TLS
   * handshake with us runs, instead of after it (steps/route.ts).
   */
  warmUpstream?: boolean;
  /** How the upstream is reached (steps/inspect.ts). */
  scheme?: "https" | "http";
  /** Set when the guard reads the request body: the values it looks for. */
  guardBody?: () => readonly Pattern[];
  /** Set when the response is scrubbed: the values it replaces. */
  scrubBody?: () => readonly Pattern[];
  /**
   * Set by steps/placeholders.ts when the session has placeholders for this service: each
   * placeholder and the value it stands for, to replace in the body and WebSocket messages.
   * A function, so the values are opened only when asked for and never stored on the flow.
   */
  substitutions?: () => readonly Substitution[];
  /**
   * Set by the steps that must see a request's body whole before anything is sent: steps/policy.ts
   * (a `_method` field in it, under rules that name methods) and steps/hold.ts (a person approves
   * exactly these bytes), which chains after it. The exchange reads the body whole, calls this with
   * it as the agent sent it (before placeholders) and decoded, and sends only on null; otherwise the
   * answer goes to the agent (policy_denied, approval_denied, approval_timeout).
   */
  checkWholeBody?: (body: { readonly sent: Buffer; readonly decoded: Buffer }) => Promise<Answer | null>;
  /**
   * Set by steps/sigv4.ts when the signature covers the body (its hash, or its chunk signatures):
   * the exchange reads the body whole, after the guard and any approval, and sends what this
   * returns (the body, re-framed for signed chunks) with the headers it signed, or the answer.
   */
  signBody?: (body: Buffer) => Buffer | Answer;
  /**
   * Set with signBody when the body can be signed as it streams too (an AWS body of signed chunks
   * past the guard's buffer): each piece the guard lets go passes through it on its way upstream.
   */
  signStream?: () => BodyTransform;
  /**
   * Set by steps/ranges.ts when a scrubbed GET asks for one range of bytes: the Range sent
   * upstream is widened by `margin` on each side, and the response writer masks the widened part
   * and cuts the bytes asked for out of it.
   */
  range?: RangePlan;
  /** Added to the upstream's response for the agent (RateLimit-* under a rate limit). */
  responseHeaders?: Record<string, string>;
}

/** One range `bytes=first-last` (last null: to the end) asked for, and the bytes around it also fetched. */
export interface RangePlan {
  readonly first: number;
  readonly last: number | null;
  /** Bytes fetched on each side: the longest spelling of any value scrubbed (secrets.ts longestSpelling). */
  readonly margin: number;
}

/** Pieces of a body changed on their way upstream, in order; an Answer stops the body there. */
export interface BodyTransform {
  push(piece: Buffer): Buffer | Answer;
  end(): Buffer | Answer;
}

/** A placeholder the agent may write, and the credential value the proxy puts in its place. */
export interface Substitution {
  readonly key: string;
  readonly placeholder: string;
  readonly value: string;
}

/** Flows made by this process: each flow's id (a counter, not a random one: it names a flow, it guards nothing). */
let flowCount = 0;

export function makeFlow(init: Pick<Flow, "via" | "host" | "port" | "method" | "path" | "headers" | "credential"> & { principal?: Principal }): Flow {
  return { id: (++flowCount).toString(36), startedAt: performance.now(), injected: [], oauthUsed: [], ...init };
}

/** Where the agent reached us decides 407 or 401 for a missing token (shared/answers.ts). */
export function reachedBy(flow: Pick<Flow, "via">): "proxy" | "server" {
  return flow.via === "explicit" ? "server" : "proxy";
}

/** The flow's answer instead of forwarding: a code from ERROR_TABLE, its status from there. */
export function answer(flow: Flow, code: ErrorCode, message: string, extra?: Record<string, unknown>): void {
  flow.answer = early(flow, extra === undefined ? { code, message } : { code, message, extra });
}

export function early(flow: Pick<Flow, "via">, a: Answer): EarlyAnswer {
  return { ...a, status: statusOf(a.code, reachedBy(flow)) };
}
