// The Ink app, a router: the tab bar, the screen on view (screens/*Screen.tsx, each owning its
// keys), the prompt on the bottom line (prompts.ts) and the global keys of DESIGN's table (tab,
// 1-5, ?, /, V, esc, q). Every key goes through one focus (hooks/use-keys.tsx): the screen, prompt
// or modal that owns it gets it, in order, also when it arrives before that owner's first frame.
// Actions call the vault API directly and report on the status line; a failure changes nothing and
// says so. Secrets are typed into masked inputs and shown only by the Credentials screen's reveal.
import { Box, type Key, Text, useApp, useStdout } from "ink";
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { osUserName } from "../shared/os-user.ts";
import { displaySafe } from "../shared/text.ts";
import { statusOf } from "../vault/proposals.ts";
import { answerHeld } from "../vault/held.ts";
import { HeldBanner } from "./components/HeldBanner.tsx";
import { useHeld } from "./hooks/use-held.ts";
import { useNow } from "./hooks/use-now.ts";
import { PromptLine } from "./components/PromptLine.tsx";
import { TabBar, TABS } from "./components/TabBar.tsx";
import { KeysProvider, useFocus, useKeys } from "./hooks/use-keys.tsx";
import { type Prompt, type PromptContext } from "./prompts.ts";
import { ActivityScreen } from "./screens/ActivityScreen.tsx";
import { CredentialsScreen, REVEAL_MS } from "./screens/CredentialsScreen.tsx";
import { ProposalsScreen } from "./screens/ProposalsScreen.tsx";
import { sortedProposals } from "./screens/rows.ts";
import { type ScreenProps, screenId } from "./screens/screen.ts";
import { ServicesScreen } from "./screens/ServicesScreen.tsx";
import { SessionsScreen } from "./screens/SessionsScreen.tsx";
import { type LogTail } from "./stores/log-tail.ts";
import { Selection } from "./stores/selection.ts";
import { type VaultView } from "./stores/vault-view.ts";

/** Per screen: the key line under it and its part of the help. */
const SCREENS: readonly { readonly hint: string; readonly help: readonly string[] }[] = [
  {
    hint: " · a approve · r reject · enter details",
    help: ["a  approve: a hidden input for each value, enter to go on, y to confirm", "r  reject with a reason", "enter  details (a and r work there too)"],
  },
  {
    hint: " · n new · e edit · d delete · v reveal · c connect · p paste",
    help: [
      "n  new credential",
      "e  edit the selected value",
      "d  delete (y to confirm)",
      `v  reveal for ${REVEAL_MS / 1000} seconds`,
      "c  connect an OAuth credential in the browser (esc stops waiting)",
      "p  paste OAuth tokens (a refresh token is checked at once)",
    ],
  },
  { hint: " · space toggle", help: ["space  enable or disable the service"] },
  { hint: " · enter details", help: ["the request log, live; / filters", "enter  details: session, status, latency, error and its reason"] },
  { hint: " · x revoke", help: ["x  revoke the session or agent (y to confirm); its tunnels close", "agents are listed after sessions, with their live grants and policy"] },
];
const COMMON_HELP = [
  "y / s / n  a held request (banner): allow once, allow for its session, deny with a reason",
  "tab / shift+tab / 1-5  switch screens",
  "↑ ↓ / j k  move",
  "/  filter",
  "V  switch vault",
  "?  this help",
  "q  quit (also ctrl+c)",
  "esc  cancel",
];
const MODAL_ID = "modal";
/** The held-request banner: it owns y, s and n on every screen while a request waits (no prompt open). */
const HELD_ID = "held";
/** How long a held request must be in front before y, s or n answer it. */
const HELD_ARM_MS = 800;
/** Lines the banner takes (border, three or four lines of text). */
const BANNER_LINES = 6;

type Modal = { readonly kind: "help" } | { readonly kind: "switch"; readonly index: number };

export interface AppProps {
  readonly view: VaultView;
  readonly log: LogTail;
  readonly color: boolean;
  readonly bell: boolean;
}

export function App(props: AppProps) {
  return (
    <KeysProvider initialOwner={screenId(0)}>
      <Router {...props} />
    </KeysProvider>
  );
}

/** State the key handlers read at call time: set the moment a key changes it, not at the next frame. */
function useSynced<T>(initial: T): [T, (next: T) => void, { readonly current: T }] {
  const [value, setValue] = useState(initial);
  const ref = useRef(initial);
  const set = (next: T) => {
    ref.current = next;
    setValue(next);
  };
  return [value, set, ref];
}

function Router({ view, log, color, bell }: AppProps) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const focus = useFocus();
  const snapshot = useSyncExternalStore(view.subscribe, view.getSnapshot);
  const vault = snapshot.vault;
  const [tab, setTab, tabRef] = useSynced(0);
  const [prompt, setPrompt, promptRef] = useSynced<{ readonly prompt: Prompt; readonly id: string } | null>(null);
  const [modal, setModal, modalRef] = useSynced<Modal | null>(null);
  const [filter, setFilter] = useState(["", "", "", "", ""]);
  const [status, setStatus] = useState<{ text: string; isError: boolean } | null>(null);
  const [size, setSize] = useState({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [selection] = useState(() => new Selection(TABS.length));
  const [reviewer] = useState(() => `tui:${osUserName()}`);
  const seenPending = useRef<Set<number> | null>(null);
  const connecting = useRef<AbortController | null>(null);
  const promptSeq = useRef(0);
  // Held requests: a clock only while one waits (its deadline counts down), the bell for a new one.
  const hasHeld = snapshot.body.vaults.some((v) => v.held.some((h) => h.status === "pending"));
  const now = useNow({ isActive: hasHeld });
  const ring = useCallback(() => {
    stdout.write("\x07");
    try {
      Bun.spawn(["notify-send", "agent-vault", "a request is held for your approval"], { stdout: "ignore", stderr: "ignore" });
    } catch {
      // no notify-send here
    }
  }, [stdout]);
  const held = useHeld({ body: snapshot.body, bell, ring, now });
  const heldRef = useRef(held);
  heldRef.current = held;

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

  const proposals = useMemo(() => sortedProposals(vault), [vault]);
  const pendingCount = proposals.filter((p) => statusOf(p) === "pending").length;

  // Focus moves with the state, synchronously: the next key goes to whatever is now in front.
  // A held request comes before screens and modals (an agent is waiting), never before an open prompt.
  const front = () => (promptRef.current ? promptRef.current.id : heldRef.current.length > 0 ? HELD_ID : modalRef.current ? MODAL_ID : screenId(tabRef.current));
  const changeTab = (next: number) => {
    setTab(next);
    focus.give(front());
  };
  const changeModal = (next: Modal | null) => {
    setModal(next);
    focus.give(front());
  };
  const say = (text: string, isError = false) => setStatus({ text, isError });

  const ctx: PromptContext = {
    store: view.store,
    vaultName: vault.name,
    proposals,
    reviewer,
    say,
    run: (label, action) => {
      action().then(
        () => {
          view.refresh();
          say(label);
        },
        (error: Error) => say(error.message, true),
      );
    },
    open: (next) => {
      // A message from before this question is stale; one this prompt gives (a refusal) is not.
      setStatus(null);
      setPrompt({ prompt: next, id: `prompt:${++promptSeq.current}` });
      focus.give(front());
    },
    close: (text, isError = false) => {
      setPrompt(null);
      focus.give(front());
      if (text !== undefined) say(text, isError);
    },
    current: () => promptRef.current?.prompt ?? null,
    setFilter: (value) => setFilter((f) => f.map((v, i) => (i === tabRef.current ? value : v))),
    goTo: (screen, select) => {
      selection.set(screen, select);
      changeTab(screen);
    },
    refresh: () => view.refresh(),
    setConnecting: (controller) => {
      connecting.current = controller;
    },
    abortConnect: () => connecting.current?.abort(),
  };

  // Keys no screen took: DESIGN's global keys.
  const globalKeys = useRef((_input: string, _key: Key): void => {});
  globalKeys.current = (input, key) => {
    const t = tabRef.current;
    if (input === "q" || (key.ctrl && input === "c")) return exit();
    if (key.tab) return changeTab((t + (key.shift ? TABS.length - 1 : 1)) % TABS.length);
    if (/^[1-5]$/.test(input)) return changeTab(Number(input) - 1);
    if (input === "?") return changeModal({ kind: "help" });
    if (input === "/") return ctx.open({ kind: "filter" });
    if (input === "V")
      return changeModal({
        kind: "switch",
        index: Math.max(
          0,
          snapshot.body.vaults.findIndex((v) => v.name === vault.name),
        ),
      });
    if (key.escape) {
      setFilter((f) => f.map((v, i) => (i === t ? "" : v)));
      setStatus(null);
    }
  };
  useLayoutEffect(() => {
    focus.setGlobal(globalKeys);
    return () => focus.setGlobal(null);
  }, [focus]);

  // A request that has just come to the front is not answered by a key pressed at once: the agent
  // knows its requests' timeouts and can line one up behind another, so that a person racing the
  // first one's countdown would allow the second with the same `y` (a browser's permission prompt
  // waits likewise). y, s and n count only once the front request has been shown for a moment.
  const frontKey = held[0] ? `${held[0].vault}:${held[0].held.id}` : null;
  const [armedKey, setArmedKey] = useState<string | null>(null);
  useEffect(() => {
    if (frontKey === null) return;
    const timer = setTimeout(() => setArmedKey(frontKey), HELD_ARM_MS);
    return () => clearTimeout(timer);
  }, [frontKey]);
  const isArmed = frontKey !== null && armedKey === frontKey;
  const armedRef = useRef(isArmed);
  armedRef.current = isArmed;

  // The banner appears or goes: the keys follow it.
  const isHeld = held.length > 0;
  useLayoutEffect(() => {
    focus.give(front());
  }, [isHeld]);

  // y allows the oldest held request once, s for the rest of its session, n asks for a reason and
  // denies; every other key goes on to the global keys (tab, q, ?).
  useKeys(
    HELD_ID,
    (input) => {
      const first = heldRef.current[0];
      if (!first) return false;
      // Too soon after this request came to the front: the key was meant for the one before.
      if (!armedRef.current && (input === "y" || input === "s" || input === "n")) return true;
      const { vault: vaultName, held: h } = first;
      if (input === "y" || input === "s") {
        const forSession = input === "s";
        ctx.run(`allowed held request #${h.id}${forSession ? ` and ${h.method} ${h.host} ${h.rule} for the rest of its session` : ""}`, () =>
          answerHeld(view.store, vaultName, h.id, { allow: true, forSession }, reviewer),
        );
        return true;
      }
      if (input === "n") {
        ctx.open({ kind: "held-deny", vault: vaultName, id: h.id });
        return true;
      }
      return false;
    },
    { isActive: isHeld },
  );

  // Help closes on any key; the vault switcher moves, enter switches, esc leaves.
  useKeys(
    MODAL_ID,
    (input, key) => {
      const m = modalRef.current;
      if (m?.kind !== "switch") return (changeModal(null), true);
      const count = snapshot.body.vaults.length;
      if (key.escape) changeModal(null);
      else if (key.downArrow || input === "j") changeModal({ ...m, index: Math.min(count - 1, m.index + 1) });
      else if (key.upArrow || input === "k") changeModal({ ...m, index: Math.max(0, m.index - 1) });
      else if (key.return) {
        view.switchTo(snapshot.body.vaults[m.index]!.name);
        selection.reset();
        changeModal(null);
      }
      return true;
    },
    { isActive: modal !== null },
  );

  const width = size.columns;
  const listHeight = Math.max(3, size.rows - 6 - (isHeld ? BANNER_LINES : 0));
  const screenProps = (index: number): ScreenProps => ({
    index,
    isVisible: tab === index && modal === null,
    view,
    vault,
    ctx,
    prompt: prompt?.prompt ?? null,
    selection,
    filter: filter[index]!,
    width,
    height: listHeight,
    color,
  });

  let body: React.ReactNode = null;
  if (modal?.kind === "help") {
    body = (
      <Box flexDirection="column">
        <Text bold>Keys — {TABS[tab]}</Text>
        {[...SCREENS[tab]!.help, ...COMMON_HELP].map((line) => (
          <Text key={line}> {line}</Text>
        ))}
      </Box>
    );
  } else if (modal?.kind === "switch") {
    body = (
      <Box flexDirection="column">
        <Text bold>Switch vault (enter)</Text>
        {snapshot.body.vaults.map((v, i) => (
          <Text key={v.id} inverse={i === modal.index}>
            {" "}
            {v.name}
          </Text>
        ))}
      </Box>
    );
  }

  let bottom: React.ReactNode;
  if (prompt) bottom = <PromptLine key={prompt.id} id={prompt.id} prompt={prompt.prompt} ctx={ctx} color={color} />;
  else if (status)
    bottom = (
      <Text color={color ? (status.isError ? "red" : "green") : undefined}>
        {status.isError ? "error: " : ""}
        {displaySafe(status.text)}
      </Text>
    );
  else
    bottom = (
      <Text dimColor>
        ? help · q quit{SCREENS[tab]!.hint}
        {filter[tab] ? ` · filter: ${displaySafe(filter[tab]!)}` : ""}
      </Text>
    );

  return (
    <Box flexDirection="column" width={width}>
      <TabBar active={tab} vault={vault.name} pending={pendingCount} color={color} width={width} />
      {snapshot.error ? <Text color={color ? "red" : undefined}>vault: {displaySafe(snapshot.error)}</Text> : null}
      <HeldBanner pending={held} vault={vault.name} now={now} width={width} color={color} armed={isArmed} />
      <Box flexDirection="column" marginTop={1} height={listHeight + 2} overflow="hidden">
        {body}
        <ProposalsScreen {...screenProps(0)} />
        <CredentialsScreen {...screenProps(1)} />
        <ServicesScreen {...screenProps(2)} />
        <ActivityScreen {...screenProps(3)} log={log} />
        <SessionsScreen {...screenProps(4)} />
      </Box>
      {prompt && status?.isError ? <Text color={color ? "red" : undefined}>error: {displaySafe(status.text)}</Text> : null}
      {bottom}
    </Box>
  );
}
