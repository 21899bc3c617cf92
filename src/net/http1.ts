// HTTP/1.1 for every leg agent-vault speaks: the agent's side of intercepted tunnels, the upstream
// pool, the OAuth token client and the agent API's proxy route. One parser, one writer, one set of
// field rules (RFC 9110/9112), so no two parts of the proxy can disagree about where a message ends.
export {
  type BodyFraming,
  type MessageEvents,
  parseChunkSize,
  type ParserLimits,
  type ParserState,
  RequestParser,
  type RequestHead,
  ResponseParser,
  type ResponseHead,
} from "./http1-parser.ts";
export {
  type HeaderList,
  headerValue,
  headerValues,
  hasConnectionOption,
  isValidHeaderName,
  isValidHeaderValue,
  listElements,
  type ParseError,
  parseContentLength,
  transferCodings,
} from "./http1-syntax.ts";
export { chunk, type HeaderInput, LAST_CHUNK, requestHead, responseHead } from "./http1-write.ts";
