// A screen's list: its rows after the filter, the highlighted row (by key, in the Selection
// store), and moves. `currentRow()` reads the latest rows and selection at call time, so a key
// handled before the next frame acts on what the previous key selected.
import { type Key } from "ink";
import { useRef, useSyncExternalStore } from "react";
import { type ListRow } from "../components/ListView.tsx";
import { type Selection } from "../stores/selection.ts";

export interface List {
  readonly rows: readonly ListRow[];
  readonly index: number;
  currentRow(): ListRow | undefined;
  /** j/k, arrows, page up/down; true when the key was a move. */
  moveKeys(input: string, key: Key): boolean;
}

function indexOf(rows: readonly ListRow[], key: string | null): number {
  const found = rows.findIndex((r) => r.key === key);
  return found === -1 ? 0 : found;
}

export function useList(screen: number, allRows: readonly ListRow[], filter: string, selection: Selection): List {
  // Only this screen's selection re-renders it, not another screen's move.
  useSyncExternalStore(selection.subscribe, () => selection.get(screen));
  const needle = filter.toLowerCase();
  const rows = needle ? allRows.filter((r) => r.text.toLowerCase().includes(needle)) : allRows;
  const latest = useRef(rows);
  latest.current = rows;
  const move = (delta: number) => {
    const list = latest.current;
    const next = list[Math.max(0, Math.min(list.length - 1, indexOf(list, selection.get(screen)) + delta))];
    selection.set(screen, next?.key ?? null);
  };
  return {
    rows,
    index: indexOf(rows, selection.get(screen)),
    currentRow: () => latest.current[indexOf(latest.current, selection.get(screen))],
    moveKeys: (input, key) => {
      if (key.downArrow || input === "j") move(1);
      else if (key.upArrow || input === "k") move(-1);
      else if (key.pageDown) move(10);
      else if (key.pageUp) move(-10);
      else return false;
      return true;
    },
  };
}
