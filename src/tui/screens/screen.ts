// What the router hands every screen. A screen stays mounted while another is shown (its detail
// view, its reveal timer survive a tab switch) but draws nothing and reads no keys then.
import { type VaultRecord } from "../../vault/state.schema.ts";
import { type Prompt, type PromptContext } from "../prompts.ts";
import { type Selection } from "../stores/selection.ts";
import { type VaultView } from "../stores/vault-view.ts";

export interface ScreenProps {
  /** Its place in the tab bar, 0-4; its focus id is `screen:N`. */
  readonly index: number;
  readonly isVisible: boolean;
  readonly view: VaultView;
  readonly vault: VaultRecord;
  readonly ctx: PromptContext;
  /** The prompt open on the bottom line, if any (the Proposals pane follows it). */
  readonly prompt: Prompt | null;
  readonly selection: Selection;
  readonly filter: string;
  readonly width: number;
  /** Rows for the list itself; the pane is two more (header, position). */
  readonly height: number;
  readonly color: boolean;
}

export const screenId = (index: number): string => `screen:${index}`;

export const uncoloured = <T extends { readonly color?: string | undefined }>(rows: readonly T[], color: boolean): readonly T[] => (color ? rows : rows.map((r) => ({ ...r, color: undefined })));
