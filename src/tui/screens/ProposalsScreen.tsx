// Proposals: pending first, newest on top. enter opens the detail, where a and r act on the
// proposal shown (as its footer says) and any other key goes back. While a proposal is being
// approved or rejected, the pane stays on it whatever arrives meanwhile.
import { Box, Text } from "ink";
import { useMemo, useRef, useState } from "react";
import { type Proposal } from "../../vault/proposal.schema.ts";
import { agentSuppliedValue, maskValue, slotsNeedingValues, statusOf } from "../../vault/proposals.ts";
import { ListView } from "../components/ListView.tsx";
import { useKeys } from "../hooks/use-keys.tsx";
import { useList } from "../hooks/use-list.ts";
import { useNow } from "../hooks/use-now.ts";
import { proposalOf } from "../prompts.ts";
import { proposalDetail, proposalHeader, proposalRows, sortedProposals } from "./rows.ts";
import { type ScreenProps, screenId, uncoloured } from "./screen.ts";

export function ProposalsScreen({ index, isVisible, view, vault, ctx, prompt, selection, filter, width, height, color }: ScreenProps) {
  const now = useNow({ isActive: isVisible });
  const proposals = useMemo(() => sortedProposals(vault), [vault]);
  const allRows = useMemo(() => (isVisible ? proposalRows(proposals, now) : []), [isVisible, proposals, now]);
  const list = useList(index, allRows, filter, selection);
  const [isDetail, setDetail] = useState(false);
  const detailRef = useRef(false);
  const showDetail = (open: boolean) => {
    detailRef.current = open;
    setDetail(open);
  };
  const proposalOfRow = (): Proposal | undefined => {
    const row = list.currentRow();
    return row ? proposals.find((p) => String(p.id) === row.key) : undefined;
  };
  const act = (p: Proposal, input: "a" | "r"): void => {
    if (statusOf(p) !== "pending") return ctx.say(`proposal #${p.id} is ${statusOf(p)}`, true);
    showDetail(false);
    if (input === "r") return ctx.open({ kind: "reject", id: p.id });
    const keys = slotsNeedingValues(p);
    ctx.open(keys.length > 0 ? { kind: "approve", id: p.id, keys, index: 0, values: {} } : { kind: "approve-confirm", id: p.id, values: {} });
  };

  useKeys(
    screenId(index),
    (input, key) => {
      const p = proposalOfRow();
      if (detailRef.current) {
        if (p && (input === "a" || input === "r")) act(p, input);
        else showDetail(false);
        return true;
      }
      if (list.moveKeys(input, key)) return true;
      if (key.return && p) return (showDetail(true), true);
      if (p && (input === "a" || input === "r")) return (act(p, input), true);
      return false;
    },
    { isActive: isVisible },
  );

  if (!isVisible) return null;
  const paneId = proposalOf(prompt) ?? (isDetail ? Number(list.currentRow()?.key) : null);
  const pane = paneId === null ? undefined : proposals.find((p) => p.id === paneId);
  if (pane) {
    const masked = (k: string) => {
      const v = statusOf(pane) === "pending" ? agentSuppliedValue(view.store, vault, pane, k) : null;
      return v === null ? null : maskValue(v);
    };
    return (
      <Box flexDirection="column">
        {proposalDetail(pane, vault, masked, height + 2, now).map((line, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: the detail's lines are a fixed layout, redrawn whole, never reordered.
          <Text key={i} wrap="truncate-end" color={line.isWarning && color ? "red" : undefined} bold={line.isWarning === true}>
            {line.text}
          </Text>
        ))}
      </Box>
    );
  }
  return (
    <ListView
      header={proposalHeader()}
      rows={uncoloured(list.rows, color)}
      selected={list.index}
      height={height}
      width={width}
      empty="no proposals: agents file them with POST $AGENT_VAULT_ADDR/v1/proposals"
    />
  );
}
