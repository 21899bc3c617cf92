// Finding credential values in traffic: the exfiltration guard looks for them in what an agent
// sends, response scrubbing replaces them in what it receives, and both look for the same forms
// after the same normalization (issue 12: a form one direction missed was a way out).
//
// Forms of each value (the vault's static values; an OAuth credential's access token, refresh
// token and client secret): raw; base64 and base64url at each of the three byte alignments (so a
// value inside a longer encoded text is found too, e.g. basic auth's base64(user:pass)); hex;
// base32 at each of the five alignments. Matching is case-insensitive (text and forms are folded
// to lower case): hex and base32 are case-insensitive forms, and an upper-cased value is the value.
//
// Scrubbing also replaces a value cut short: a run of PARTIAL_LENGTH or more characters that is the
// head or the tail of a form (an upstream that echoes `value[:N] + "…"`), so an agent learns at
// most 7 characters at either end of a form and must guess the rest at once against the guard.
//
// Normalization: before matching, text is also seen decoded (escapes.ts): percent-encoding of any
// character, JSON and JavaScript string escapes, up to three rounds. Content codings are undone
// by the callers (net/codings.ts). Matching is on bytes (latin1 strings of the UTF-8 encoding).//
// The parts: secret-forms.ts (the forms of a value), secret-compiled.ts (the patterns compiled
// for searching, decoded windows), secret-find.ts (text read whole: find, scrub, mask, hold-back),
// secret-streams.ts (StreamScrubber, StreamGuard); content codings are net/codings.ts. This
// module is what the rest of the proxy imports.
export { type Coding, codingsOf, decodeBody, decoderChain } from "../net/codings.ts";
export { longestSpelling, PIECE_LENGTH } from "./secret-compiled.ts";
export { endsWithPartValue, findAll, findSecret, guardScan, type Hit, hasScrubbable, maskFor, maskText, openRests, partialSuffix, scrubText } from "./secret-find.ts";
export { base32, MIN_SECRET_LENGTH, PARTIAL_LENGTH, type Pattern, patternsOf, publicPrefixLength, vaultPatterns } from "./secret-forms.ts";
export { StreamGuard, StreamScrubber } from "./secret-streams.ts";
