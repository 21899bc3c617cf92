// Credentials: metadata only. n new, e edit, d delete, v reveal (for a few seconds, the one value
// this screen ever opens), c connect and p paste for OAuth credentials.
import { Box, Text } from "ink";
import { useEffect, useMemo, useState } from "react";
import { displaySafe } from "../../shared/text.ts";
import { getCredentialValue } from "../../vault/credentials.ts";
import { ListView } from "../components/ListView.tsx";
import { useKeys } from "../hooks/use-keys.tsx";
import { useList } from "../hooks/use-list.ts";
import { useNow } from "../hooks/use-now.ts";
import { connectStep, pasteStep } from "../prompts.ts";
import { credentialHeader, credentialRows } from "./rows.ts";
import { type ScreenProps, screenId, uncoloured } from "./screen.ts";

export const REVEAL_MS = 5000;

export function CredentialsScreen({ index, isVisible, view, vault, ctx, prompt, selection, filter, width, height, color }: ScreenProps) {
  const now = useNow({ isActive: isVisible });
  const [revealed, setRevealed] = useState<{ key: string; value: string } | null>(null);
  // A value revealed in one vault is not left on screen over another vault's rows.
  useEffect(() => setRevealed(null), [vault.id]);
  useEffect(() => {
    if (!revealed) return;
    const timer = setTimeout(() => setRevealed(null), REVEAL_MS);
    return () => clearTimeout(timer);
  }, [revealed]);
  const allRows = useMemo(() => (isVisible ? credentialRows(vault, revealed, width, now) : []), [isVisible, vault, revealed, width, now]);
  const list = useList(index, allRows, filter, selection);

  useKeys(
    screenId(index),
    (input, key) => {
      if (list.moveKeys(input, key)) return true;
      if (input === "n") return (ctx.open({ kind: "new-key" }), true);
      const row = list.currentRow();
      if (!row || !"cpedv".includes(input) || input === "") return false;
      const isOAuth = vault.credentials[row.key]?.type === "oauth";
      if (input === "c" || input === "p") {
        if (!isOAuth) ctx.say(`${row.key} is a static credential; c and p are for OAuth credentials (e edits its value)`, true);
        else if (input === "p") pasteStep(ctx, row.key);
        else connectStep(ctx, row.key, undefined, undefined, false);
      } else if (input === "e") {
        if (vault.credentials[row.key]?.type === "source") ctx.say(`${row.key} comes from a source: change the value there (or re-point it with agent-vault vault credential source)`, true);
        else if (isOAuth) ctx.say(`${row.key} is an OAuth credential: c connects it, p pastes tokens`, true);
        else ctx.open({ kind: "set-value", key: row.key, isNew: false });
      } else if (input === "d") {
        ctx.open({ kind: "confirm-delete", key: row.key });
      } else {
        try {
          setRevealed({ key: row.key, value: getCredentialValue(view.store, vault, row.key) });
        } catch (error) {
          ctx.say((error as Error).message, true);
        }
      }
      return true;
    },
    { isActive: isVisible },
  );

  if (!isVisible) return null;
  const showReveal = revealed !== null && prompt === null;
  return (
    <Box flexDirection="column">
      <ListView header={credentialHeader(width)} rows={uncoloured(list.rows, color)} selected={list.index} height={showReveal ? height - 1 : height} width={width} empty="nothing here yet" />
      {showReveal ? (
        <Text color={color ? "yellow" : undefined}>
          {revealed.key} = {displaySafe(revealed.value)} (hidden again in {REVEAL_MS / 1000}s)
        </Text>
      ) : null}
    </Box>
  );
}
