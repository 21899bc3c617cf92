// Proposals: pending first, newest on top. enter opens the detail, where a and r act on the
// proposal shown (as its footer says) and any other key goes back. The highlight and the detail
// hold on to a proposal by id, so one filed meanwhile never takes the place of the one on screen;
// while a proposal is being approved or rejected, the pane stays on it.
import { Box, Text } from "ink";
import { useEffect, useMemo, useRef, useState } from "react";
import { type Proposal } from "../../vault/proposal.schema.ts";
import { agentSuppliedValue, maskValue, slotsNeedingValues, statusOf } from "../../vault/proposals.ts";
import { ListView } from "../components/ListView.tsx";
import { useKeys } from "../hooks/use-keys.tsx";
import { useList } from "../hooks/use-list.ts";
import { useNow } from "../hooks/use-now.ts";
import { proposalOf } from "../prompts.ts";
import { proposalDetail, proposalHeader, proposalRows, sortedProposals } from "./rows.ts";
import { type ScreenProps, screenId, uncoloured } from "./screen.ts";

/** How long a proposal must have been on screen before a key acts on it (as held requests' banner). */
const ARM_MS = 800;

export function ProposalsScreen({ index, isVisible, view, vault, ctx, prompt, selection, filter, width, height, color }: ScreenProps) {
  const now = useNow({ isActive: isVisible });
  const proposals = useMemo(() => sortedProposals(vault), [vault]);
  const allRows = useMemo(() => (isVisible ? proposalRows(proposals, now) : []), [isVisible, proposals, now]);
  const list = useList(index, allRows, filter, selection);
  // When each proposal was first on screen: one that arrived under the reviewer's cursor (the top
  // row follows the newest until a row is chosen) is not acted on by a key pressed in that instant.
  const firstSeen = useRef(new Map<number, number>());
  const loaded = useRef(false);
  useEffect(() => {
    // Those there when the TUI opened did not arrive under a key: they count as long seen.
    const at = loaded.current ? Date.now() : 0;
    loaded.current = true;
    for (const p of proposals) if (!firstSeen.current.has(p.id)) firstSeen.current.set(p.id, at);
  }, [proposals]);
  const justArrived = (p: Proposal): boolean => Date.now() - (firstSeen.current.get(p.id) ?? 0) < ARM_MS;
  // The open detail is one proposal by id, never "whatever row is highlighted now": a proposal
  // that arrived while the reviewer read it cannot take its place under `a` (red team, session 7).
  const [detailId, setDetailId] = useState<number | null>(null);
  const detailRef = useRef<number | null>(null);
  const latest = useRef(proposals);
  latest.current = proposals;
  const showDetail = (id: number | null) => {
    detailRef.current = id;
    setDetailId(id);
  };
  const proposalOfRow = (): Proposal | undefined => {
    const row = list.currentRow();
    return row ? latest.current.find((p) => String(p.id) === row.key) : undefined;
  };
  const act = (p: Proposal, input: "a" | "r"): void => {
    if (statusOf(p) !== "pending") return ctx.say(`proposal #${p.id} is ${statusOf(p)}`, true);
    showDetail(null);
    if (input === "r") return ctx.open({ kind: "reject", id: p.id });
    const keys = slotsNeedingValues(p);
    ctx.open(keys.length > 0 ? { kind: "approve", id: p.id, keys, index: 0, values: {} } : { kind: "approve-confirm", id: p.id, values: {} });
  };

  useKeys(
    screenId(index),
    (input, key) => {
      if (detailRef.current !== null) {
        const shown = latest.current.find((x) => x.id === detailRef.current);
        if (shown && (input === "a" || input === "r")) act(shown, input);
        else showDetail(null);
        return true;
      }
      const p = proposalOfRow();
      if (list.moveKeys(input, key)) return true;
      if (p && (key.return || input === "a" || input === "r") && justArrived(p)) {
        ctx.say(`proposal #${p.id} just arrived: look at it first (press the key again)`, true);
        return true;
      }
      if (key.return && p) {
        selection.set(index, String(p.id));
        showDetail(p.id);
        return true;
      }
      if (p && (input === "a" || input === "r")) return (act(p, input), true);
      return false;
    },
    { isActive: isVisible },
  );

  if (!isVisible) return null;
  const paneId = proposalOf(prompt) ?? detailId;
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
