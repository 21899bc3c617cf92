// Sessions, then agents with their live grants and policy: x revokes the highlighted one (y to
// confirm); its tunnels close.
import { useMemo } from "react";
import { ListView } from "../components/ListView.tsx";
import { useKeys } from "../hooks/use-keys.tsx";
import { useList } from "../hooks/use-list.ts";
import { useNow } from "../hooks/use-now.ts";
import { sessionHeader, sessionRows } from "./rows.ts";
import { type ScreenProps, screenId, uncoloured } from "./screen.ts";

export function SessionsScreen({ index, isVisible, vault, ctx, selection, filter, width, height, color }: ScreenProps) {
  const now = useNow({ isActive: isVisible });
  const allRows = useMemo(() => (isVisible ? sessionRows(vault, now) : []), [isVisible, vault, now]);
  const list = useList(index, allRows, filter, selection);
  useKeys(
    screenId(index),
    (input, key) => {
      if (list.moveKeys(input, key)) return true;
      const row = list.currentRow();
      if (input !== "x" || !row) return false;
      ctx.open({ kind: "confirm-revoke", id: row.key });
      return true;
    },
    { isActive: isVisible },
  );
  if (!isVisible) return null;
  return <ListView header={sessionHeader()} rows={uncoloured(list.rows, color)} selected={list.index} height={height} width={width} empty="nothing here yet" />;
}
