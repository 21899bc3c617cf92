import { Box, Text } from "ink";

export const TABS = ["Proposals", "Credentials", "Services", "Activity", "Sessions"] as const;
export type Tab = (typeof TABS)[number];

export interface TabBarProps {
  readonly active: number;
  readonly vault: string;
  readonly pending: number;
  readonly color: boolean;
}

export function TabBar({ active, vault, pending, color }: TabBarProps) {
  return (
    <Box justifyContent="space-between">
      <Box>
        {TABS.map((name, i) => (
          <Text key={name} inverse={i === active} bold={i === active} color={color && i === 0 && pending > 0 ? "yellow" : undefined}>
            {` ${i + 1} ${name}${i === 0 && pending > 0 ? ` (${pending})` : ""} `}
          </Text>
        ))}
      </Box>
      <Text dimColor>vault: {vault}</Text>
    </Box>
  );
}
