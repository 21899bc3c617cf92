// Differential test: our RequestParser against node:http's llhttp (strict mode), the parser the
// agent's side of the proxy used before, on mutated pipelined requests. Where both accept, they must
// split the bytes into the same requests (method, target, body): a disagreement is request
// smuggling. Where llhttp refuses, we must not complete more requests than it did ("every form the
// current parser refuses" stays refused). We may refuse more: that is the point of being strict.
import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { hasConnectionOption, headerValues, type RequestHead, RequestParser } from "../../src/net/http1.ts";
import { prng } from "../support/random.ts";
import { mutate, REQUEST_CORPUS } from "./http1-fuzz.ts";

type Done = [method: string, target: string, body: string];

/** llhttp refusals that are not about framing, each with why we accept the form. */
const EXCUSED = new Set(["HPE_INVALID_METHOD"]);
// "Content-Length: 5\t", "Transfer-Encoding: chunked\t" (llhttp refuses HTAB there, not SP): OWS after a field value is part of the field line (RFC 9112 5), and the
// proxy writes the value again without it, so no parser behind us sees the whitespace.
const TRAILING_OWS_CL = /\r\ncontent-length:[^\r\n]*[ \t]\r\n/i;
const TRAILING_OWS_TE = /\r\ntransfer-encoding:[^\r\n]*[ \t]\r\n/i;
// "Content-Length: 5, 5": a list of equal values is one length (RFC 9110 8.6); unequal ones are refused.
const LISTED_CL = /\r\ncontent-length:[^\r\n]*,/i;
// "5 ;ext": BWS before a chunk extension is in the grammar (RFC 9112 7.1.1); the proxy writes its own
// chunk framing upstream, so the whitespace goes no further.
const BWS_BEFORE_EXT = /\n[0-9A-Fa-f]+[ \t]+;/;

// Upgrades and CONNECT hand the rest of the bytes to another protocol; llhttp's server wants an
// 'upgrade' listener for them. They are covered by the vectors in http1.test.ts.
const CORPUS = [
  ...REQUEST_CORPUS.filter((m) => !/upgrade/i.test(m)),
  "POST /c HTTP/1.1\r\nHost: c\r\nContent-Length: 0\r\n\r\n",
  "DELETE /d?x=1 HTTP/1.1\r\nHost: d:80\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
];

/** What our parser completes, up to and including the first request after which the client closes. */
function ours(bytes: Buffer): { done: Done[]; refused: boolean } {
  const done: Done[] = [];
  let head: RequestHead | null = null;
  let body = "";
  let closes = false;
  const parser: RequestParser = new RequestParser({
    head: (h) => {
      head = h;
      body = "";
    },
    body: (b) => (body += b.toString("latin1")),
    end: () => {
      const h = head!;
      done.push([h.method, h.target, body]);
      const connection = headerValues(h.headers, "connection");
      closes = hasConnectionOption(connection, "close") || (h.version === "1.0" && !hasConnectionOption(connection, "keep-alive"));
    },
  });
  let error = parser.feed(bytes);
  while (!error && !closes && parser.state === "done") error = parser.next();
  return { done, refused: error !== null };
}

test("mutated pipelined requests: llhttp and our parser never disagree on where a request ends", () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const r = prng(seed);
  const inputs: Buffer[] = [];
  for (let i = 0; i < 600; i++) {
    const picked = Array.from({ length: 1 + Math.floor(r() * 3) }, () => CORPUS[Math.floor(r() * CORPUS.length)]!).join("");
    inputs.push(Buffer.from(i % 6 === 0 ? picked : mutate(r, picked), "latin1"));
  }
  const run = spawnSync("node", [join(import.meta.dir, "llhttp-oracle.cjs")], { input: JSON.stringify(inputs.map((b) => b.toString("base64"))), encoding: "utf8", timeout: 60_000 });
  expect(run.status, run.stderr).toBe(0);
  const oracle = JSON.parse(run.stdout) as { done: Done[]; error: string | null }[];
  let bothAccepted = 0;
  let weRefusedMore = 0;
  for (let i = 0; i < inputs.length; i++) {
    const what = `seed ${seed} input ${i}: ${JSON.stringify(inputs[i]!.toString("latin1"))} llhttp ${JSON.stringify(oracle[i])}`;
    const us = ours(inputs[i]!);
    const theirs = oracle[i]!;
    const common = Math.min(us.done.length, theirs.done.length);
    // Same requests as far as both got: the same method, target and body bytes.
    expect(us.done.slice(0, common), what).toEqual(theirs.done.slice(0, common));
    // llhttp knows a fixed list of methods; any token is a method in RFC 9110 (9.1), and the
    // pipeline, not the parser, decides what a method may do. Framing is what must agree.
    const text = inputs[i]!.toString("latin1");
    const excused =
      theirs.error !== null &&
      (EXCUSED.has(theirs.error) ||
        (theirs.error === "HPE_INVALID_CONTENT_LENGTH" && (TRAILING_OWS_CL.test(text) || LISTED_CL.test(text))) ||
        (theirs.error === "HPE_INVALID_CHUNK_SIZE" && BWS_BEFORE_EXT.test(text)) ||
        (theirs.error === "HPE_INVALID_TRANSFER_ENCODING" && TRAILING_OWS_TE.test(text)));
    if (theirs.error !== null && !excused) expect(us.done.length, what).toBeLessThanOrEqual(theirs.done.length);
    else if (!us.refused && !excused) expect(us.done.length, what).toBe(theirs.done.length);
    if (theirs.error === null && !us.refused) bothAccepted++;
    if (us.refused && theirs.error === null) weRefusedMore++;
  }
  console.log(`differential: ${inputs.length} inputs, both accepted ${bothAccepted}, refused only by us ${weRefusedMore} (seed ${seed})`);
  // The corpus is valid before mutation: a harness that parses nothing would prove nothing.
  expect(bothAccepted).toBeGreaterThan(50);
}, 90_000);
