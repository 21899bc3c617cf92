// A clock for relative times ("FILED 10s ago"): re-renders its screen about once a second while
// the screen is on view. It reads nothing from the vault; only the text is redrawn.
import { useEffect, useState } from "react";

export const TICK_MS = 1000;

export function useNow(options: { readonly isActive: boolean }): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!options.isActive) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), TICK_MS);
    return () => clearInterval(timer);
  }, [options.isActive]);
  return now;
}
