// A one-line input. With `mask`, what is typed is never drawn: only a count of dots, so a pasted
// secret never reaches the screen. The value lives in a ref updated as each key arrives: keys typed
// faster than frames are drawn (autotype, paste managers) must all count, and Enter must submit
// exactly what was typed. Keys typed before it was on screen reach it through the focus
// (hooks/use-keys.tsx), in order, once it has mounted.
import { type Key, Text } from "ink";
import { useRef, useState } from "react";
import { useKeys } from "../hooks/use-keys.tsx";

export interface MaskedInputProps {
  /** Its focus id: the app gives the focus to it when it opens. */
  readonly id: string;
  readonly label: string;
  readonly mask: boolean;
  readonly onSubmit: (value: string) => void;
  readonly onCancel: () => void;
}

export function MaskedInput({ id, label, mask, onSubmit, onCancel }: MaskedInputProps) {
  const value = useRef("");
  const [length, setLength] = useState(0);
  const [shownText, setShownText] = useState("");
  const update = (next: string) => {
    value.current = next;
    setLength(next.length);
    if (!mask) setShownText(next);
  };
  const handle = (input: string, key: Key): void => {
    if (key.escape) return onCancel();
    if (key.return) return onSubmit(value.current);
    if (key.backspace || key.delete) return update(value.current.slice(0, -1));
    if (key.ctrl && input === "u") return update("");
    if (key.ctrl || key.meta || key.tab || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow) return;
    // Typed-ahead or pasted text can arrive in one chunk with its Enter: submit at the break.
    const lineBreak = input.search(/[\r\n]/);
    if (lineBreak !== -1) return onSubmit(value.current + input.slice(0, lineBreak));
    update(value.current + input);
  };
  // Every key is the input's while it has the focus: none reaches the screen behind it.
  useKeys(id, (input, key) => (handle(input, key), true), { isActive: true, takesText: true });
  const shown = mask ? "•".repeat(Math.min(length, 32)) + (length > 32 ? "…" : "") : shownText;
  return (
    <Text>
      {label} {shown}
      <Text inverse> </Text>
    </Text>
  );
}
