// The tab bar. The Proposals tab keeps room for its pending count whether or not one is shown,
// so the other tabs do not move when a proposal arrives.
import { Box, Text } from "ink";
import { displaySafe } from "../../shared/text.ts";
import { MAX_PENDING_PROPOSALS } from "../../vault/proposal.schema.ts";

export const TABS = ["Proposals", "Credentials", "Services", "Activity", "Sessions"] as const;
export type Tab = (typeof TABS)[number];

export interface TabBarProps {
  readonly active: number;
  readonly vault: string;
  readonly pending: number;
  readonly color: boolean;
  readonly width: number;
}

const COUNT_WIDTH = ` (${MAX_PENDING_PROPOSALS})`.length;

function tabText(i: number, pending: number): string {
  return ` ${i + 1} ${TABS[i]}${i === 0 ? (pending > 0 ? ` (${pending})` : "").padEnd(COUNT_WIDTH) : ""} `;
}

/** `vault: NAME` when it fits beside the tabs, else the name, cut with "…" if need be. */
function vaultLabel(vault: string, room: number): string {
  const full = `vault: ${displaySafe(vault)}`;
  if (full.length <= room) return full;
  const name = displaySafe(vault);
  return name.length <= room ? name : `${name.slice(0, Math.max(0, room - 1))}…`;
}

export function TabBar({ active, vault, pending, color, width }: TabBarProps) {
  const tabsWidth = TABS.reduce((sum, _name, i) => sum + tabText(i, pending).length, 0);
  return (
    <Box justifyContent="space-between">
      <Box>
        {TABS.map((name, i) => (
          <Text key={name} inverse={i === active} bold={i === active} color={color && i === 0 && pending > 0 ? "yellow" : undefined}>
            {tabText(i, pending)}
          </Text>
        ))}
      </Box>
      <Text dimColor>{vaultLabel(vault, width - tabsWidth - 1)}</Text>
    </Box>
  );
}
