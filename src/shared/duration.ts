// Durations as people type them: 90s, 15m, 24h, 7d, 2w. Used by --ttl and --expires-in.
const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds, or null when the text is not a duration. Capped at ten years. */
export function parseDuration(text: string): number | null {
  const match = /^([0-9]{1,6})([smhdw])$/.exec(text.trim());
  if (!match) return null;
  const ms = Number(match[1]) * UNITS[match[2]!]!;
  return ms > 0 && ms <= 3650 * UNITS.d! ? ms : null;
}
