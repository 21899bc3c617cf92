// Bulk transfers and memory. Every socket read under Bun is a new buffer, and under a sustained
// transfer JavaScriptCore collects them late: a 1 GiB upload through the proxy peaked at 160–300 MB
// of RSS (the busier the machine, the later the collection). A full collection after every
// RELAYED_BYTES_PER_GC bytes read from either side keeps the peak near 135 MB (1 GiB each way,
// `npm run bench:proxy`), for about 9% more proxy CPU per GiB; small requests reach the threshold
// rarely (each collection is a pause of a few milliseconds).
const RELAYED_BYTES_PER_GC = 128 * 1024 * 1024;

let relayedSinceGc = 0;

/** Counts bytes read from an agent or an upstream; collects once enough have gone by. */
export function countRelayed(bytes: number): void {
  relayedSinceGc += bytes;
  if (relayedSinceGc < RELAYED_BYTES_PER_GC) return;
  relayedSinceGc = 0;
  Bun.gc(true);
}
