// The bottom line while a prompt is open: a text or hidden input, a y/n confirmation or a wait,
// drawn from its entry in the prompts table (src/tui/prompts.ts). It owns the keys under `id`. A
// label can hold a key the agent proposed or a URL a provider sent: escaped like any such text.
import { Box, Text } from "ink";
import { displaySafe } from "../../shared/text.ts";
import { useKeys } from "../hooks/use-keys.tsx";
import { type Prompt, type PromptContext, type PromptSpec, specOf } from "../prompts.ts";
import { MaskedInput } from "./MaskedInput.tsx";

export interface PromptLineProps {
  readonly id: string;
  readonly prompt: Prompt;
  readonly ctx: PromptContext;
  readonly color: boolean;
}

export function PromptLine({ id, prompt, ctx, color }: PromptLineProps) {
  const spec: PromptSpec<Prompt> = specOf(prompt);
  if (spec.type === "confirm")
    return <Confirm id={id} label={displaySafe(spec.label(prompt))} color={color ? spec.tone : undefined} onAnswer={(yes) => (yes ? spec.yes(prompt, ctx) : ctx.close(spec.no(prompt)))} />;
  if (spec.type === "wait") return <Wait id={id} label={displaySafe(spec.label(prompt))} detail={spec.detail(prompt)} color={color} onStop={() => spec.stop(prompt, ctx)} />;
  return (
    <MaskedInput
      id={id}
      label={displaySafe(spec.label(prompt))}
      mask={spec.type === "hidden"}
      onCancel={() => ctx.close(spec.cancelled(prompt))}
      onSubmit={(value) => {
        const refusal = spec.validate?.(value, prompt) ?? null;
        if (refusal !== null) return ctx.say(refusal, true);
        spec.submit(value, prompt, ctx);
      }}
    />
  );
}

function Confirm({ id, label, color, onAnswer }: { readonly id: string; readonly label: string; readonly color: string | undefined; readonly onAnswer: (yes: boolean) => void }) {
  useKeys(id, (input) => (onAnswer(input === "y" || input === "Y"), true), { isActive: true });
  return <Text color={color}>{label}</Text>;
}

function Wait({ id, label, detail, color, onStop }: { readonly id: string; readonly label: string; readonly detail: string; readonly color: boolean; readonly onStop: () => void }) {
  useKeys(id, (_input, key) => (key.escape ? onStop() : undefined, true), { isActive: true });
  return (
    <Box flexDirection="column">
      <Text color={color ? "yellow" : undefined}>{label}</Text>
      <Text>{displaySafe(detail)}</Text>
    </Box>
  );
}
