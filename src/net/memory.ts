// Bulk transfers and memory. Every socket read under Bun is a new buffer, and under a sustained
// transfer JavaScriptCore collects them late: a 1 GiB upload through the proxy peaked at 160–300 MB
// of RSS (the busier the machine, the later the collection). So a full collection runs after every
// RELAYED_BYTES_PER_GC bytes read from either side, and once traffic pauses for IDLE_MS after at
// least IDLE_MIN_BYTES, so what a burst of requests left behind is not still there when a transfer
// starts (after keep-alive requests a 1 GiB transfer peaked at 160 MB, now 144; the RSS before it
// stays near 90 MiB, pages the allocator keeps). With no requests before it the peak is near 135 MB
// (`npm run bench:proxy`), for about 9% more proxy CPU per GiB; small requests reach the thresholds
// rarely, and each collection is a pause of a few milliseconds.
const RELAYED_BYTES_PER_GC = 128 * 1024 * 1024;
const IDLE_MIN_BYTES = 4 * 1024 * 1024;
const IDLE_MS = 1_000;

let relayedSinceGc = 0;
let lastRead = 0;
let idleCheck: ReturnType<typeof setInterval> | null = null;

/** Counts bytes read from an agent or an upstream; collects once enough have gone by. */
export function countRelayed(bytes: number): void {
  relayedSinceGc += bytes;
  lastRead = performance.now();
  if (relayedSinceGc >= RELAYED_BYTES_PER_GC) return collect();
  if (idleCheck === null && relayedSinceGc >= IDLE_MIN_BYTES) {
    idleCheck = setInterval(() => {
      if (performance.now() - lastRead >= IDLE_MS) collect();
    }, IDLE_MS);
    idleCheck.unref();
  }
}

function collect(): void {
  relayedSinceGc = 0;
  if (idleCheck !== null) clearInterval(idleCheck);
  idleCheck = null;
  Bun.gc(true);
}
