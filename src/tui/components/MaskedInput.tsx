// A one-line input. With `mask`, what is typed is never drawn: only a count of dots, so a pasted
// secret never reaches the screen. The value lives in a ref updated as each key arrives: keys typed
// faster than frames are drawn (autotype, paste managers) must all count, and Enter must submit
// exactly what was typed.
import { Text, useInput } from "ink";
import { useEffect, useRef, useState } from "react";

// Every useInput listener sees every key. The key an input took must not also act on the app
// (Enter submits here, then must not answer the confirmation that submit opened).
let consumedNow: string | null = null;

export function wasConsumedByInput(input: string): boolean {
  return consumedNow === input;
}

function consume(input: string): void {
  consumedNow = input;
  queueMicrotask(() => {
    consumedNow = null;
  });
}

export interface MaskedInputProps {
  readonly label: string;
  readonly mask: boolean;
  readonly isActive: boolean;
  readonly onSubmit: (value: string) => void;
  readonly onCancel: () => void;
  /** Keys typed before this input was on screen (type-ahead), taken once when it mounts. */
  readonly takeInitial?: () => string;
  /** False once the app has moved on (a submit changed the mode) before this input unmounted. */
  readonly isCurrent?: () => boolean;
}

export function MaskedInput({ label, mask, isActive, onSubmit, onCancel, takeInitial, isCurrent }: MaskedInputProps) {
  const value = useRef("");
  const finished = useRef(false);
  const submit = (text: string) => {
    finished.current = true;
    onSubmit(text);
  };
  const [length, setLength] = useState(0);
  const [shownText, setShownText] = useState("");
  const update = (next: string) => {
    value.current = next;
    setLength(next.length);
    if (!mask) setShownText(next);
  };
  useEffect(() => {
    const initial = takeInitial?.() ?? "";
    if (!initial) return;
    const lineBreak = initial.search(/[\r\n]/);
    if (lineBreak !== -1) submit(initial.slice(0, lineBreak));
    else update(initial);
    // Mount only: the type-ahead belongs to this input's first frame.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  useInput(
    (input, key) => {
      // Keys that arrive after Enter but before this input leaves the screen are not its own.
      if (finished.current || (isCurrent && !isCurrent())) return;
      consume(input);
      if (key.escape) {
        finished.current = true;
        return onCancel();
      }
      if (key.return) return submit(value.current);
      if (key.backspace || key.delete) return update(value.current.slice(0, -1));
      if (key.ctrl && input === "u") return update("");
      if (key.ctrl || key.meta || key.tab || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow) return;
      // Typed-ahead or pasted text can arrive in one chunk with its Enter: submit at the break.
      const lineBreak = input.search(/[\r\n]/);
      if (lineBreak !== -1) return submit(value.current + input.slice(0, lineBreak));
      update(value.current + input);
    },
    { isActive },
  );
  const shown = mask ? "•".repeat(Math.min(length, 32)) + (length > 32 ? "…" : "") : shownText;
  return (
    <Text>
      {label} {shown}
      <Text inverse> </Text>
    </Text>
  );
}
