// Activity: the request log, live, newest first. enter shows everything the record holds (who,
// where, the status, the latency, the error code and, when the proxy wrote one, the reason in
// words); any key goes back. The detail keeps the record it opened on while the log moves.
import { Box, Text } from "ink";
import { useMemo, useRef, useState, useSyncExternalStore } from "react";
import { ListView } from "../components/ListView.tsx";
import { useKeys } from "../hooks/use-keys.tsx";
import { useList } from "../hooks/use-list.ts";
import { type LogTail } from "../stores/log-tail.ts";
import { activityDetail, activityHeader, activityRows, activityWidths, entryOfRow, type LoggedRequest } from "./activity.ts";
import { type ScreenProps, screenId, uncoloured } from "./screen.ts";

// A long path or reason wraps, up to this many lines each, so every field stays on a 24-row screen.
const DETAIL_LINES = 3;
const LABEL_WIDTH = 11;

function cutToLines(text: string, lineWidth: number, lines: number): string {
  const room = Math.max(10, lineWidth) * lines;
  return text.length > room ? `${text.slice(0, room - 1)}…` : text;
}

export function ActivityScreen({ log, ...props }: ScreenProps & { readonly log: LogTail }) {
  const { index, isVisible, selection, filter, width, height, color } = props;
  const entries = useSyncExternalStore(log.subscribe, log.getSnapshot) as readonly LoggedRequest[];
  const widths = useMemo(() => (isVisible ? activityWidths(entries, width) : []), [isVisible, entries, width]);
  const allRows = useMemo(() => (isVisible ? activityRows(entries, widths) : []), [isVisible, entries, widths]);
  const list = useList(index, allRows, filter, selection);
  const [detail, setDetail] = useState<LoggedRequest | null>(null);
  const detailRef = useRef<LoggedRequest | null>(null);
  const showDetail = (entry: LoggedRequest | null) => {
    detailRef.current = entry;
    setDetail(entry);
  };

  useKeys(
    screenId(index),
    (input, key) => {
      if (detailRef.current) return (showDetail(null), true);
      if (list.moveKeys(input, key)) return true;
      const row = list.currentRow();
      if (!key.return || !row) return false;
      showDetail(entryOfRow(log.getSnapshot() as readonly LoggedRequest[], row.key) ?? null);
      return true;
    },
    { isActive: isVisible },
  );

  if (!isVisible) return null;
  if (detail) {
    return (
      <Box flexDirection="column">
        <Text bold>Request (any key goes back)</Text>
        {activityDetail(detail).map((l) => (
          <Box key={l.label}>
            <Box width={LABEL_WIDTH} flexShrink={0}>
              <Text>{`  ${l.label}`}</Text>
            </Box>
            <Box width={Math.max(10, width - LABEL_WIDTH)}>
              <Text wrap="wrap">{cutToLines(l.value, width - LABEL_WIDTH, DETAIL_LINES)}</Text>
            </Box>
          </Box>
        ))}
      </Box>
    );
  }
  return <ListView header={activityHeader(widths)} rows={uncoloured(list.rows, color)} selected={list.index} height={height} width={width} empty="nothing here yet" />;
}
