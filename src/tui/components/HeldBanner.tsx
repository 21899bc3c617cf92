// The banner a held request puts above every screen: what is waiting (method, host, path, whose,
// the body's first characters) and the keys that answer it. Everything in it came from the agent,
// so every piece is escaped (displaySafe) and cut to the terminal's width: a line stays a line.
import { Box, Text } from "ink";
import { displaySafe } from "../../shared/text.ts";
import { type PendingHeld } from "../hooks/use-held.ts";

export interface HeldBannerProps {
  readonly pending: readonly PendingHeld[];
  /** The vault on screen: another vault's request names its vault. */
  readonly vault: string;
  readonly now: number;
  readonly width: number;
  readonly color: boolean;
  /** False for a moment after a request comes to the front: y, s and n wait (see app.tsx). */
  readonly armed: boolean;
}

const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, Math.max(0, max - 1))}…` : text);

export function HeldBanner({ pending, vault, now, width, color, armed }: HeldBannerProps) {
  const first = pending[0];
  if (!first) return null;
  const h = first.held;
  const target = `${h.method} ${h.host}${h.port === 443 ? "" : `:${h.port}`}${h.path}`;
  const whose = [h.agent ? `agent ${h.agent}` : null, h.session ? `session ${h.session}` : null].filter(Boolean).join(", ");
  const left = Math.max(0, Math.ceil((Date.parse(h.expires_at) - now) / 1000));
  const more = pending.length > 1 ? ` (+${pending.length - 1} more)` : "";
  const where = first.vault !== vault ? ` in vault ${first.vault}` : "";
  const room = Math.max(20, width - 2);
  return (
    <Box flexDirection="column" borderStyle="single" borderColor={color ? "yellow" : undefined} paddingX={1} width={width}>
      <Text bold color={color ? "yellow" : undefined}>
        {cut(`HELD #${h.id}${where}${more}: ${displaySafe(target)}`, room - 2)}
      </Text>
      <Text>{cut(`from ${displaySafe(whose || h.principal)} · rule ${displaySafe(h.rule)} · waits ${left}s · body ${h.body_bytes} B`, room - 2)}</Text>
      {h.preview ? <Text dimColor>{cut(`body: ${displaySafe(h.preview)}`, room - 2)}</Text> : null}
      <Text>{cut(armed ? "y allow once · s allow for the session · n deny (with a reason)" : "a new request is in front: read it, y s n answer in a moment", room - 2)}</Text>
    </Box>
  );
}
