// Step 4b: no ranged requests while scrubbing. Scrubbing finds a value only whole: with `Range`
// an agent could fetch an echoed value a few bytes at a time (each piece too short to be a value)
// and join them. So the Range and If-Range headers are removed and the upstream answers whole.
// The cost: a resumed download starts again from the beginning, and a seek fetches everything.
import { type Flow } from "../flow.ts";
import { type StepContext } from "../step-context.ts";

export function dropRanges(flow: Flow, _ctx: StepContext): void {
  if (!flow.vault?.settings.scrub) return;
  delete flow.headers.range;
  delete flow.headers["if-range"];
}
