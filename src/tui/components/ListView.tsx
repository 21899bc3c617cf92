// A scrolling list: rows are plain strings already laid out by the screen; the selected row is
// inverted. Only the rows that fit are drawn, so 1,000 credentials cost one screenful.
import { Box, Text } from "ink";
import { displaySafe } from "../../shared/text.ts";

export interface ListRow {
  readonly key: string;
  readonly text: string;
  readonly color?: string | undefined;
}

export interface ListViewProps {
  readonly header: string;
  readonly rows: readonly ListRow[];
  readonly selected: number;
  readonly height: number;
  readonly width: number;
  readonly empty: string;
}

export function ListView({ header, rows, selected, height, width, empty }: ListViewProps) {
  const visible = Math.max(1, height);
  const start = Math.min(Math.max(0, selected - Math.floor(visible / 2)), Math.max(0, rows.length - visible));
  const cut = (s: string) => (s.length > width ? `${s.slice(0, width - 1)}…` : s);
  return (
    <Box flexDirection="column">
      <Text bold>{cut(header)}</Text>
      {rows.length === 0 ? <Text dimColor>{empty}</Text> : null}
      {rows.slice(start, start + visible).map((row, i) => (
        <Text key={row.key} inverse={start + i === selected} color={row.color}>
          {cut(row.text)}
        </Text>
      ))}
      {rows.length > visible ? <Text dimColor>{`${start + 1}-${Math.min(start + visible, rows.length)} of ${rows.length}`}</Text> : null}
    </Box>
  );
}

/**
 * Fixed-width columns for a row. Cells hold text from agents and upstreams (a proposal's message, a
 * logged host, path or error), so each is escaped (src/shared/text.ts) before it is cut to width.
 */
export function columns(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((c, i) =>
      i === cells.length - 1
        ? displaySafe(c)
        : displaySafe(c)
            .slice(0, widths[i]! - 1)
            .padEnd(widths[i]!),
    )
    .join("");
}
