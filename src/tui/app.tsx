// The Ink app: five screens over two stores (the vault view and the log tail). Keys follow DESIGN's
// table. Actions call the vault API directly and report in the status line; a failure (a conflict,
// a locked vault) changes nothing and says so. Secrets are typed into masked inputs and shown only
// by the timed reveal.
import { Box, Text, useApp, useInput, useStdout } from "ink";
import { useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { userInfo } from "node:os";
import { openBrowser } from "../oauth/connect.ts";
import { displaySafe } from "../shared/text.ts";
import { connectOAuth, pasteOAuth, resolveConfig, shouldAskClientSecret } from "../oauth/credential.ts";
import { deleteCredentials, getCredentialValue, setCredentials } from "../vault/credentials.ts";
import { agentSuppliedValue, approveProposal, maskValue, rejectProposal, slotsNeedingValues, statusOf } from "../vault/proposals.ts";
import { setServiceEnabled } from "../vault/services.ts";
import { revokeAgent } from "../vault/agents.ts";
import { revokeSession } from "../vault/sessions.ts";
import { ListView, type ListRow } from "./components/ListView.tsx";
import { MaskedInput, wasConsumedByInput } from "./components/MaskedInput.tsx";
import { TabBar, TABS } from "./components/TabBar.tsx";
import { activityRows, credentialRows, headers, proposalDetail, proposalRows, serviceRows, sessionRows, sortedProposals } from "./screens/rows.ts";
import { type LogTail } from "./stores/log-tail.ts";
import { type VaultView } from "./stores/vault-view.ts";

const REVEAL_MS = 5000;

type Mode =
  | { kind: "normal" }
  | { kind: "help" }
  | { kind: "filter" }
  | { kind: "detail" }
  | { kind: "approve"; id: number; keys: string[]; index: number; values: Record<string, string> }
  | { kind: "approve-confirm"; id: number; values: Record<string, string> }
  | { kind: "reject"; id: number }
  | { kind: "new-key" }
  | { kind: "set-value"; key: string; isNew: boolean }
  | { kind: "confirm-delete"; key: string }
  | { kind: "confirm-revoke"; id: string }
  | { kind: "switch"; index: number }
  | { kind: "oauth-client-id"; key: string }
  | { kind: "oauth-secret"; key: string; clientId: string | undefined }
  | { kind: "oauth-waiting"; key: string; url: string }
  | { kind: "paste-access"; key: string }
  | { kind: "paste-refresh"; key: string; access: string | undefined };

const TYPING_MODES = ["filter", "approve", "reject", "new-key", "set-value", "oauth-client-id", "oauth-secret", "paste-access", "paste-refresh"];

function isTypingMode(mode: Mode): boolean {
  return TYPING_MODES.includes(mode.kind);
}

const HELP: Record<number, string[]> = {
  0: ["a  approve: a hidden input for each value, enter to go on, y to confirm", "r  reject with a reason", "enter  details"],
  1: [
    "n  new credential",
    "e  edit the selected value",
    "d  delete (y to confirm)",
    `v  reveal for ${REVEAL_MS / 1000} seconds`,
    "c  connect an OAuth credential in the browser (esc stops waiting)",
    "p  paste OAuth tokens (a refresh token is checked at once)",
  ],
  2: ["space  enable or disable the service"],
  3: ["the request log, live; / filters"],
  4: ["x  revoke the session or agent (y to confirm); its tunnels close", "agents are listed after sessions, with their live grants and policy"],
};
const COMMON_HELP = ["tab / shift+tab / 1-5  switch screens", "↑ ↓ / j k  move", "/  filter", "V  switch vault", "?  this help", "q  quit (also ctrl+c)", "esc  cancel"];

export interface AppProps {
  readonly view: VaultView;
  readonly log: LogTail;
  readonly color: boolean;
  readonly bell: boolean;
}

function reviewer(): string {
  try {
    return `tui:${userInfo().username}`;
  } catch {
    return "tui";
  }
}

export function App({ view, log, color, bell }: AppProps) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const snapshot = useSyncExternalStore(view.subscribe, view.getSnapshot);
  const entries = useSyncExternalStore(log.subscribe, log.getSnapshot);
  const [tab, setTab] = useState(0);
  // Selection is by row key (a proposal id, a credential key), so a row arriving above the
  // highlighted one does not move what `a` or `d` acts on.
  const [selected, setSelected] = useState<(string | null)[]>([null, null, null, null, null]);
  const [filter, setFilter] = useState(["", "", "", "", ""]);
  const [mode, setMode] = useState<Mode>({ kind: "normal" });
  const [status, setStatus] = useState<{ text: string; isError: boolean } | null>(null);
  const [revealed, setRevealed] = useState<{ key: string; value: string } | null>(null);
  const [size, setSize] = useState({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const seenPending = useRef<Set<number> | null>(null);
  const connecting = useRef<AbortController | null>(null);
  const vault = snapshot.vault;

  useEffect(() => {
    const onResize = () => setSize({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
    stdout.on("resize", onResize);
    return () => void stdout.off("resize", onResize);
  }, [stdout]);

  // A new proposal rings the bell (and a desktop notification where notify-send exists).
  useEffect(() => {
    const pending = new Set(vault.proposals.filter((p) => statusOf(p) === "pending").map((p) => p.id));
    if (seenPending.current !== null && bell) {
      const fresh = [...pending].filter((id) => !seenPending.current!.has(id));
      if (fresh.length > 0) {
        stdout.write("\x07");
        try {
          Bun.spawn(["notify-send", "agent-vault", `proposal #${fresh[0]} is waiting for review`], { stdout: "ignore", stderr: "ignore" });
        } catch {
          // no notify-send here
        }
      }
    }
    seenPending.current = pending;
  }, [vault, bell, stdout]);

  useEffect(() => {
    if (!revealed) return;
    const timer = setTimeout(() => setRevealed(null), REVEAL_MS);
    return () => clearTimeout(timer);
  }, [revealed]);

  const proposals = useMemo(() => sortedProposals(vault), [vault]);
  const activityEntries = tab === 3 ? entries : null;
  const allRows: ListRow[] = useMemo(() => {
    switch (tab) {
      case 0:
        return proposalRows(proposals);
      case 1:
        return credentialRows(vault, revealed, size.columns);
      case 2:
        return serviceRows(vault);
      case 3:
        return activityRows(activityEntries ?? [], size.columns);
      default:
        return sessionRows(vault);
    }
  }, [tab, proposals, vault, revealed, activityEntries, size.columns]);
  const needle = filter[tab]!.toLowerCase();
  const rows = needle ? allRows.filter((r) => r.text.toLowerCase().includes(needle)) : allRows;
  const found = rows.findIndex((r) => r.key === selected[tab]);
  const index = found === -1 ? 0 : found;
  const current = rows[index];
  const pendingCount = proposals.filter((p) => statusOf(p) === "pending").length;

  const say = (text: string, isError = false) => setStatus({ text, isError });
  const run = (label: string, action: () => Promise<unknown>) => {
    action().then(
      () => {
        view.refresh();
        say(label);
      },
      (error: Error) => say(error.message, true),
    );
  };
  const move = (delta: number) => {
    const next = rows[Math.max(0, Math.min(rows.length - 1, index + delta))];
    setSelected((s) => s.map((v, i) => (i === tab ? (next?.key ?? null) : v)));
  };
  const selectedProposal = () => (tab === 0 && current ? proposals.find((p) => String(p.id) === current.key) : undefined);

  // One handler for every mode but typing: it reads the mode and tab from refs, which change the
  // moment a key is handled, so keys that arrive before the next frame (type-ahead, a paste right
  // after `a`) act on the state the previous key left, never on a stale render.
  const modeRef = useRef<Mode>(mode);
  const tabRef = useRef(tab);
  const typeahead = useRef("");
  modeRef.current = mode;
  tabRef.current = tab;
  const changeMode = (next: Mode) => {
    modeRef.current = next;
    setMode(next);
  };
  const changeTab = (next: number) => {
    tabRef.current = next;
    setTab(next);
  };
  // The mode whose input is mounted: keys for it go to the input, not to type-ahead.
  const inputOwner = useRef<Mode | null>(null);
  const renderedMode = mode;
  const isCurrentInput = () => modeRef.current === renderedMode;
  const takeTypeahead = () => {
    inputOwner.current = renderedMode;
    const text = typeahead.current;
    typeahead.current = "";
    return text;
  };
  const currentRowOf = (t: number): ListRow | undefined => {
    if (t === tab) return current;
    const list = t === 0 ? proposalRows(proposals) : t === 1 ? credentialRows(vault, null) : t === 2 ? serviceRows(vault) : t === 3 ? activityRows(entries) : sessionRows(vault);
    return list.find((r) => r.key === selected[t]) ?? list[0];
  };

  useInput(
    (input, key) => {
      if (wasConsumedByInput(input)) return;
      const m = modeRef.current;
      if (isTypingMode(m)) {
        // The input on screen owns these keys; until it is mounted they wait as type-ahead.
        if (inputOwner.current !== m) typeahead.current += key.return ? "\r" : input;
        return;
      }
      if (m.kind !== "normal") return handleModal(m, input, key);
      // Several keys can arrive as one chunk ("2d"): take them one at a time.
      if (input.length > 1 && !key.ctrl && !key.meta && /^[\x20-\x7e]+$/.test(input)) {
        for (const char of input) {
          if (isTypingMode(modeRef.current)) typeahead.current += char;
          else if (modeRef.current.kind !== "normal") handleModal(modeRef.current, char, {} as typeof key);
          else handleNormal(char, {} as typeof key);
        }
        return;
      }
      handleNormal(input, key);
    },
    { isActive: true },
  );

  function handleNormal(input: string, key: { ctrl?: boolean; tab?: boolean; shift?: boolean; downArrow?: boolean; upArrow?: boolean; pageDown?: boolean; pageUp?: boolean; escape?: boolean; return?: boolean }): void {
    const t = tabRef.current;
    const row = currentRowOf(t);
    if (input === "q" || (key.ctrl && input === "c")) return exit();
    if (key.tab) return changeTab((t + (key.shift ? TABS.length - 1 : 1)) % TABS.length);
    if (/^[1-5]$/.test(input)) return changeTab(Number(input) - 1);
    if (key.downArrow || input === "j") return move(1);
    if (key.upArrow || input === "k") return move(-1);
    if (key.pageDown) return move(10);
    if (key.pageUp) return move(-10);
    if (input === "?") return changeMode({ kind: "help" });
    if (input === "/") return changeMode({ kind: "filter" });
    if (input === "V") return changeMode({ kind: "switch", index: Math.max(0, snapshot.body.vaults.findIndex((v) => v.name === vault.name)) });
    if (key.escape) {
      setFilter((f) => f.map((v, i) => (i === t ? "" : v)));
      return setStatus(null);
    }
    if (key.return && t === 0 && row) return changeMode({ kind: "detail" });
    if (t === 0) {
      const p = row ? proposals.find((x) => String(x.id) === row.key) : undefined;
      if (!p) return;
      if (input === "a" || input === "r") {
        if (statusOf(p) !== "pending") return say(`proposal #${p.id} is ${statusOf(p)}`, true);
        if (input === "r") return changeMode({ kind: "reject", id: p.id });
        const keys = slotsNeedingValues(p);
        return changeMode(keys.length > 0 ? { kind: "approve", id: p.id, keys, index: 0, values: {} } : { kind: "approve-confirm", id: p.id, values: {} });
      }
    }
    if (t === 1) {
      if (input === "n") return changeMode({ kind: "new-key" });
      if (!row) return;
      if (input === "c" || input === "p") {
        if (vault.credentials[row.key]?.type !== "oauth") return say(`${row.key} is a static credential; c and p are for OAuth credentials (e edits its value)`, true);
        if (input === "p") return changeMode({ kind: "paste-access", key: row.key });
        return connectStep(row.key, undefined, undefined);
      }
      if (input === "e" && vault.credentials[row.key]?.type === "oauth") return say(`${row.key} is an OAuth credential: c connects it, p pastes tokens`, true);
      if (input === "e") return changeMode({ kind: "set-value", key: row.key, isNew: false });
      if (input === "d") return changeMode({ kind: "confirm-delete", key: row.key });
      if (input === "v") {
        try {
          return setRevealed({ key: row.key, value: getCredentialValue(view.store, vault, row.key) });
        } catch (error) {
          return say((error as Error).message, true);
        }
      }
    }
    if (t === 2 && input === " " && row) {
      const service = vault.services.find((s) => s.name === row.key);
      if (service) run(`${service.enabled ? "disabled" : "enabled"} service ${service.name}`, () => setServiceEnabled(view.store, vault.name, service.name, !service.enabled));
    }
    if (t === 4 && input === "x" && row) return changeMode({ kind: "confirm-revoke", id: row.key });
  }

  // Modal keys: help and detail close on any key; confirmations take y; the switcher moves.
  function handleModal(m: Mode, input: string, key: { escape?: boolean; downArrow?: boolean; upArrow?: boolean; return?: boolean }): void {
    if (m.kind === "help" || m.kind === "detail") return changeMode({ kind: "normal" });
    if (m.kind === "oauth-waiting") {
      if (key.escape) connecting.current?.abort();
      return;
    }
    if (m.kind === "switch") {
      const count = snapshot.body.vaults.length;
      if (key.escape) return changeMode({ kind: "normal" });
      if (key.downArrow || input === "j") return changeMode({ ...m, index: Math.min(count - 1, m.index + 1) });
      if (key.upArrow || input === "k") return changeMode({ ...m, index: Math.max(0, m.index - 1) });
      if (key.return) {
        view.switchTo(snapshot.body.vaults[m.index]!.name);
        setSelected([null, null, null, null, null]);
        return changeMode({ kind: "normal" });
      }
      return;
    }
    const yes = input === "y" || input === "Y";
    if (m.kind === "approve-confirm") {
      changeMode({ kind: "normal" });
      if (!yes) return say(`proposal #${m.id} was not applied`);
      const oauthSlots = proposals.find((p) => p.id === m.id)?.credentials.filter((c) => c.action === "set" && c.type === "oauth").map((c) => c.key) ?? [];
      if (oauthSlots.length === 0) return run(`applied proposal #${m.id}`, () => approveProposal(view.store, vault.name, m.id, m.values, reviewer()));
      // OAuth slots are completed next, on the Credentials screen, with the first one selected.
      return run(`applied proposal #${m.id}; ${oauthSlots.join(", ")} ${oauthSlots.length > 1 ? "are OAuth credentials" : "is an OAuth credential"}: press c to connect or p to paste tokens`, async () => {
        await approveProposal(view.store, vault.name, m.id, m.values, reviewer());
        setSelected((s) => s.map((v, i) => (i === 1 ? oauthSlots[0]! : v)));
        changeTab(1);
      });
    }
    if (m.kind === "confirm-delete") {
      changeMode({ kind: "normal" });
      if (!yes) return say(`${m.key} was not deleted`);
      return run(`deleted ${m.key}`, () => deleteCredentials(view.store, vault.name, [m.key]));
    }
    if (m.kind === "confirm-revoke") {
      changeMode({ kind: "normal" });
      if (!yes) return say(`session ${m.id} was not revoked`);
      if (m.id.startsWith("agent:")) return run(`revoked agent ${m.id.slice(6)}`, () => revokeAgent(view.store, vault.name, m.id.slice(6)));
      return run(`revoked session ${m.id}`, () => revokeSession(view.store, vault.name, m.id));
    }
  }

  /**
   * Connect, one question at a time: a client id if none is known, a client secret if the method
   * or provider wants one, then the browser; the status line shows the URL while it waits.
   */
  function connectStep(key: string, clientId: string | undefined, secret: string | undefined): void {
    let resolved;
    try {
      resolved = resolveConfig(view.store, vault.name, key, { clientId }, { needAuthorizationUrl: true, hasNewSecret: secret !== undefined });
    } catch (error) {
      return say((error as Error).message, true);
    }
    if (!resolved.config.client_id) return changeMode({ kind: "oauth-client-id", key });
    if (secret === undefined && modeRef.current.kind !== "oauth-secret" && shouldAskClientSecret(resolved, false)) return changeMode({ kind: "oauth-secret", key, clientId });
    const controller = new AbortController();
    connecting.current = controller;
    changeMode({ kind: "oauth-waiting", key, url: "" });
    connectOAuth(view.store, vault.name, key, {
      resolved,
      clientSecret: secret,
      timeoutMs: 300_000,
      signal: controller.signal,
      onReady: (url) => {
        changeMode({ kind: "oauth-waiting", key, url });
        void openBrowser(url);
      },
    }).then(
      (record) => {
        view.refresh();
        say(`connected ${key}${record.expires_at ? `; the access token expires ${new Date(record.expires_at).toLocaleTimeString()}` : ""}`);
      },
      (error: Error) => say(error.message, true),
    ).finally(() => {
      connecting.current = null;
      if (modeRef.current.kind === "oauth-waiting") changeMode({ kind: "normal" });
    });
  }

  const cancel = (text: string) => {
    changeMode({ kind: "normal" });
    say(text);
  };
  const width = size.columns;
  const listHeight = Math.max(3, size.rows - 6);
  // While approving or rejecting, the pane stays on that proposal whatever arrives meanwhile.
  const proposal = "id" in mode && typeof mode.id === "number" ? proposals.find((p) => p.id === mode.id) : selectedProposal();

  let bottom: React.ReactNode = null;
  if (mode.kind === "filter") {
    bottom = <MaskedInput key="filter" label="/" mask={false} isActive takeInitial={takeTypeahead} isCurrent={isCurrentInput} onCancel={() => cancel("filter cleared")} onSubmit={(value) => {
      setFilter((f) => f.map((v, i) => (i === tab ? value : v)));
      changeMode({ kind: "normal" });
    }} />;
  } else if (mode.kind === "approve") {
    const key = mode.keys[mode.index]!;
    bottom = <MaskedInput key={`approve-${key}`} label={`Value for ${key} (hidden, enter to go on, esc cancels):`} mask isActive takeInitial={takeTypeahead} isCurrent={isCurrentInput} onCancel={() => cancel(`proposal #${mode.id} was not applied`)} onSubmit={(value) => {
      if (!value) return say(`${key} needs a value`, true);
      const values = { ...mode.values, [key]: value };
      changeMode(mode.index + 1 < mode.keys.length ? { ...mode, index: mode.index + 1, values } : { kind: "approve-confirm", id: mode.id, values });
    }} />;
  } else if (mode.kind === "approve-confirm") {
    bottom = <Text color={color ? "yellow" : undefined}>Apply proposal #{mode.id}? y to confirm, any other key cancels</Text>;
  } else if (mode.kind === "reject") {
    bottom = <MaskedInput key="reject" label={`Reason for rejecting #${mode.id} (enter):`} mask={false} isActive takeInitial={takeTypeahead} isCurrent={isCurrentInput} onCancel={() => cancel("not rejected")} onSubmit={(reason) => {
      changeMode({ kind: "normal" });
      run(`rejected proposal #${mode.id}`, () => rejectProposal(view.store, vault.name, mode.id, reason, reviewer()));
    }} />;
  } else if (mode.kind === "new-key") {
    bottom = <MaskedInput key="new-key" label="New credential key (UPPER_SNAKE_CASE):" mask={false} isActive takeInitial={takeTypeahead} isCurrent={isCurrentInput} onCancel={() => cancel("cancelled")} onSubmit={(k) => changeMode({ kind: "set-value", key: k.trim(), isNew: true })} />;
  } else if (mode.kind === "set-value") {
    bottom = <MaskedInput key={`value-${mode.key}`} label={`Value for ${mode.key} (hidden):`} mask isActive takeInitial={takeTypeahead} isCurrent={isCurrentInput} onCancel={() => cancel("cancelled")} onSubmit={(value) => {
      changeMode({ kind: "normal" });
      run(`${mode.isNew ? "stored" : "updated"} ${mode.key}`, () => setCredentials(view.store, vault.name, [{ key: mode.key, value }]));
    }} />;
  } else if (mode.kind === "oauth-client-id") {
    bottom = <MaskedInput key={`client-${mode.key}`} label={`Client id for ${mode.key} (enter):`} mask={false} isActive takeInitial={takeTypeahead} isCurrent={isCurrentInput} onCancel={() => cancel("not connected")} onSubmit={(id) => {
      if (id.trim() === "") return cancel("not connected: a client id is needed");
      connectStep(mode.key, id.trim(), undefined);
    }} />;
  } else if (mode.kind === "oauth-secret") {
    bottom = <MaskedInput key={`secret-${mode.key}`} label={`Client secret for ${mode.key} (hidden; enter for none):`} mask isActive takeInitial={takeTypeahead} isCurrent={isCurrentInput} onCancel={() => cancel("not connected")} onSubmit={(secret) => connectStep(mode.key, mode.clientId, secret === "" ? undefined : secret)} />;
  } else if (mode.kind === "oauth-waiting") {
    bottom = (
      <Box flexDirection="column">
        <Text color={color ? "yellow" : undefined}>Waiting for the browser to authorize {mode.key} (esc stops waiting). If no browser opened, open:</Text>
        <Text>{displaySafe(mode.url) || "…"}</Text>
      </Box>
    );
  } else if (mode.kind === "paste-access") {
    bottom = <MaskedInput key={`paste-a-${mode.key}`} label={`Access token for ${mode.key} (hidden; enter to skip):`} mask isActive takeInitial={takeTypeahead} isCurrent={isCurrentInput} onCancel={() => cancel("nothing pasted")} onSubmit={(access) => changeMode({ kind: "paste-refresh", key: mode.key, access: access === "" ? undefined : access })} />;
  } else if (mode.kind === "paste-refresh") {
    bottom = <MaskedInput key={`paste-r-${mode.key}`} label={`Refresh token for ${mode.key} (hidden; enter to skip):`} mask isActive takeInitial={takeTypeahead} isCurrent={isCurrentInput} onCancel={() => cancel("nothing pasted")} onSubmit={(refresh) => {
      changeMode({ kind: "normal" });
      const refreshToken = refresh === "" ? undefined : refresh;
      say(refreshToken ? `checking the refresh token of ${mode.key}…` : `storing ${mode.key}…`);
      run(refreshToken ? `the refresh token works; stored ${mode.key}` : `stored ${mode.key} (no refresh token: paste again when it expires)`, async () => {
        const resolved = resolveConfig(view.store, vault.name, mode.key, {}, { needAuthorizationUrl: false, hasNewSecret: false });
        await pasteOAuth(view.store, vault.name, mode.key, { resolved, accessToken: mode.access, refreshToken });
      });
    }} />;
  } else if (mode.kind === "confirm-delete") {
    bottom = <Text color={color ? "red" : undefined}>Delete {mode.key}? y to confirm</Text>;
  } else if (mode.kind === "confirm-revoke") {
    bottom = <Text color={color ? "red" : undefined}>Revoke {mode.id.startsWith("agent:") ? `agent ${mode.id.slice(6)}` : `session ${mode.id}`}? y to confirm</Text>;
  } else if (status) {
    bottom = <Text color={color ? (status.isError ? "red" : "green") : undefined}>{status.isError ? "error: " : ""}{displaySafe(status.text)}</Text>;
  } else {
    bottom = <Text dimColor>? help · q quit{tab === 0 ? " · a approve · r reject · enter details" : tab === 1 ? " · n new · e edit · d delete · v reveal · c connect · p paste" : tab === 2 ? " · space toggle" : tab === 4 ? " · x revoke" : ""}{filter[tab] ? ` · filter: ${displaySafe(filter[tab]!)}` : ""}</Text>;
  }

  let body: React.ReactNode;
  if (mode.kind === "help") {
    body = (
      <Box flexDirection="column">
        <Text bold>Keys — {TABS[tab]}</Text>
        {[...HELP[tab]!, ...COMMON_HELP].map((line) => <Text key={line}>  {line}</Text>)}
      </Box>
    );
  } else if (mode.kind === "switch") {
    body = (
      <Box flexDirection="column">
        <Text bold>Switch vault (enter)</Text>
        {snapshot.body.vaults.map((v, i) => <Text key={v.id} inverse={i === mode.index}>  {v.name}</Text>)}
      </Box>
    );
  } else if ((mode.kind === "detail" || mode.kind === "approve" || mode.kind === "approve-confirm" || mode.kind === "reject") && proposal) {
    body = (
      <Box flexDirection="column">
        {proposalDetail(proposal, vault, (k) => {
          const v = statusOf(proposal) === "pending" ? agentSuppliedValue(view.store, vault, proposal, k) : null;
          return v === null ? null : maskValue(v);
        }, listHeight + 2).map((line, i) => (
          <Text key={i} wrap="truncate-end" color={line.isWarning && color ? "red" : undefined} bold={line.isWarning === true}>
            {line.text}
          </Text>
        ))}
      </Box>
    );
  } else {
    body = <ListView header={headers(width)[tab]!} rows={color ? rows : rows.map((r) => ({ ...r, color: undefined }))} selected={index} height={listHeight} width={width} empty={tab === 0 ? "no proposals: agents file them with POST $AGENT_VAULT_ADDR/v1/proposals" : "nothing here yet"} />;
  }

  const isTyping = isTypingMode(mode);
  return (
    <Box flexDirection="column" width={width}>
      <TabBar active={tab} vault={vault.name} pending={pendingCount} color={color} />
      {snapshot.error ? <Text color={color ? "red" : undefined}>vault: {displaySafe(snapshot.error)}</Text> : null}
      <Box flexDirection="column" marginTop={1} height={listHeight + 2} overflow="hidden">
        {body}
      </Box>
      {isTyping && status?.isError ? <Text color={color ? "red" : undefined}>error: {displaySafe(status.text)}</Text> : null}
      {revealed && tab === 1 && mode.kind === "normal" ? <Text color={color ? "yellow" : undefined}>{revealed.key} = {displaySafe(revealed.value)}   (hidden again in {REVEAL_MS / 1000}s)</Text> : null}
      {bottom}
    </Box>
  );
}
