// Who gets the next key, decided the moment a key is handled, not after the next frame. Ink
// re-subscribes a `useInput` listener in an effect after each render, so a key that arrives before
// that (type-ahead, a paste right after `a`, `5x` in one chunk) would reach a handler that belongs
// to the previous state. Here one listener receives every key and hands it to the current owner's
// handler; an owner that is not on screen yet (a prompt just opened, a screen just switched to)
// gets its keys replayed, in order, once it has mounted. One mechanism for every screen and prompt.
import { type Key, useInput } from "ink";
import { createContext, type ReactNode, useCallback, useContext, useLayoutEffect, useRef, useState } from "react";

/** Returns true when the key was the owner's; anything else goes on to the global keys. */
export type KeyHandler = (input: string, key: Key) => boolean | void;

interface Registration {
  readonly handler: { readonly current: KeyHandler };
  /** A text input takes a pasted chunk whole; a screen takes "2d" as 2, then d. */
  readonly takesText: boolean;
}

// A paste is at most this many keys waiting for their owner; more is dropped, not held forever.
const MAX_QUEUED = 1024;
const NO_KEY: Key = {
  upArrow: false,
  downArrow: false,
  leftArrow: false,
  rightArrow: false,
  pageDown: false,
  pageUp: false,
  home: false,
  end: false,
  return: false,
  escape: false,
  ctrl: false,
  shift: false,
  tab: false,
  backspace: false,
  delete: false,
  meta: false,
  super: false,
  hyper: false,
  capsLock: false,
  numLock: false,
} as Key;

export class KeyFocus {
  private ownerId: string;
  private readonly owners = new Map<string, Registration>();
  private readonly queue: { input: string; key: Key }[] = [];
  private global: { readonly current: KeyHandler } | null = null;
  private isPumping = false;

  constructor(initialOwner: string) {
    this.ownerId = initialOwner;
  }

  get owner(): string {
    return this.ownerId;
  }

  /** The next key goes to `id`, whether or not it is on screen yet. */
  give(id: string): void {
    this.ownerId = id;
  }

  /** Keys no owner took (tab, 1-5, q, ?): the router's. */
  setGlobal(handler: { readonly current: KeyHandler } | null): void {
    this.global = handler;
  }

  register(id: string, registration: Registration): () => void {
    this.owners.set(id, registration);
    this.pump();
    return () => {
      if (this.owners.get(id) === registration) this.owners.delete(id);
    };
  }

  receive(input: string, key: Key): void {
    if (this.queue.length < MAX_QUEUED) this.queue.push({ input, key });
    this.pump();
  }

  /** Delivers queued keys while their owner is on screen; stops at the first owner that is not. */
  private pump(): void {
    if (this.isPumping) return;
    this.isPumping = true;
    try {
      while (this.queue.length > 0) {
        const owner = this.owners.get(this.ownerId);
        if (!owner) return;
        const { input, key } = this.queue.shift()!;
        // Several keys in one chunk ("2d", tmux's send-keys): one at a time, each against the
        // state the previous one left, unless the owner is a text input.
        if (!owner.takesText && input.length > 1 && !key.ctrl && !key.meta && /^[\x20-\x7e]+$/.test(input)) {
          this.queue.unshift(...[...input].map((char) => ({ input: char, key: NO_KEY })));
          continue;
        }
        if (owner.handler.current(input, key) !== true) this.global?.current(input, key);
      }
    } finally {
      this.isPumping = false;
    }
  }
}

const FocusContext = createContext<KeyFocus | null>(null);

/** The one Ink listener: every key goes through the focus. */
export function KeysProvider({ initialOwner, children }: { readonly initialOwner: string; readonly children: ReactNode }) {
  const [focus] = useState(() => new KeyFocus(initialOwner));
  const onInput = useCallback((input: string, key: Key) => focus.receive(input, key), [focus]);
  useInput(onInput, { isActive: true });
  return <FocusContext.Provider value={focus}>{children}</FocusContext.Provider>;
}

export function useFocus(): KeyFocus {
  const focus = useContext(FocusContext);
  if (!focus) throw new Error("useFocus outside KeysProvider");
  return focus;
}

/**
 * Ink's `useInput` shape: `handler` gets the keys while `isActive` and `id` owns the focus. The
 * handler is read at call time, so a replayed key sees the latest render's state.
 */
export function useKeys(id: string, handler: KeyHandler, options: { readonly isActive: boolean; readonly takesText?: boolean }): void {
  const focus = useFocus();
  const ref = useRef(handler);
  useLayoutEffect(() => {
    ref.current = handler;
  });
  const takesText = options.takesText ?? false;
  useLayoutEffect(() => {
    if (!options.isActive) return;
    return focus.register(id, { handler: ref, takesText });
  }, [focus, id, options.isActive, takesText]);
}
