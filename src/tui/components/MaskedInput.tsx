// A one-line input. With `mask`, what is typed is never drawn: only a count of dots, so a pasted
// secret never reaches the screen. The value lives in a ref updated as each key arrives: keys typed
// faster than frames are drawn (autotype, paste managers) must all count, and Enter must submit
// exactly what was typed.
import { Text, useInput } from "ink";
import { useEffect, useRef, useState } from "react";

export interface MaskedInputProps {
  readonly label: string;
  readonly mask: boolean;
  readonly isActive: boolean;
  readonly onSubmit: (value: string) => void;
  readonly onCancel: () => void;
  /** Keys typed before this input was on screen (type-ahead), taken once when it mounts. */
  readonly takeInitial?: () => string;
}

export function MaskedInput({ label, mask, isActive, onSubmit, onCancel, takeInitial }: MaskedInputProps) {
  const value = useRef("");
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
    if (lineBreak !== -1) onSubmit(initial.slice(0, lineBreak));
    else update(initial);
    // Mount only: the type-ahead belongs to this input's first frame.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  useInput(
    (input, key) => {
      if (key.escape) return onCancel();
      if (key.return) return onSubmit(value.current);
      if (key.backspace || key.delete) return update(value.current.slice(0, -1));
      if (key.ctrl && input === "u") return update("");
      if (key.ctrl || key.meta || key.tab || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow) return;
      // Typed-ahead or pasted text can arrive in one chunk with its Enter: submit at the break.
      const lineBreak = input.search(/[\r\n]/);
      if (lineBreak !== -1) return onSubmit(value.current + input.slice(0, lineBreak));
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
