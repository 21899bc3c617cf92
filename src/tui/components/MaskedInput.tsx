// A one-line input. With `mask`, what is typed is never drawn: only a count of dots, so a pasted
// secret never reaches the screen.
import { Text } from "ink";
import { useInput } from "ink";
import { useState } from "react";

export interface MaskedInputProps {
  readonly label: string;
  readonly mask: boolean;
  readonly isActive: boolean;
  readonly onSubmit: (value: string) => void;
  readonly onCancel: () => void;
}

export function MaskedInput({ label, mask, isActive, onSubmit, onCancel }: MaskedInputProps) {
  const [value, setValue] = useState("");
  useInput(
    (input, key) => {
      if (key.escape) return onCancel();
      if (key.return) return onSubmit(value);
      if (key.backspace || key.delete) return setValue((v) => v.slice(0, -1));
      if (key.ctrl && input === "u") return setValue("");
      if (key.ctrl || key.meta || key.tab || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow) return;
      // Typed-ahead or pasted text can arrive in one chunk with its Enter: submit at the break.
      const lineBreak = input.search(/[\r\n]/);
      if (lineBreak !== -1) return onSubmit(value + input.slice(0, lineBreak));
      setValue((v) => v + input);
    },
    { isActive },
  );
  const shown = mask ? "•".repeat(Math.min(value.length, 32)) + (value.length > 32 ? "…" : "") : value;
  return (
    <Text>
      {label} {shown}
      <Text inverse> </Text>
    </Text>
  );
}
