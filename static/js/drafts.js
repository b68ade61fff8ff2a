// What a person has written but not sent, one draft per chat, kept in this browser
// (localStorage, keyed by user and chat) so that switching chats or reloading loses
// nothing. Logging out forgets every draft (forgetDrafts), as it empties the app's cache.

const PREFIX = 'chat.draft.';

function storage() {
  try {
    return window.localStorage;
  } catch {
    // Refused (a sandboxed frame, some private modes): drafts last until the page closes.
    return null;
  }
}

export class Drafts {
  constructor(userId) {
    this.prefix = `${PREFIX}${userId}.`;
    this.memory = new Map();
  }

  key(chatId) {
    return `${this.prefix}${chatId}`;
  }

  /** The draft of `chatId`, or ''. */
  get(chatId) {
    const store = storage();
    let text = null;
    try {
      text = store ? store.getItem(this.key(chatId)) : null;
    } catch {
      text = null;
    }
    return text ?? this.memory.get(chatId) ?? '';
  }

  /** Keep `text` as the draft of `chatId`; blank text forgets it. */
  set(chatId, text) {
    if (!chatId) return;
    if (!text.trim()) {
      this.forget(chatId);
      return;
    }
    this.memory.set(chatId, text);
    try {
      const store = storage();
      if (store) store.setItem(this.key(chatId), text);
    } catch {
      // Storage full: the draft stays in memory for this page.
    }
  }

  forget(chatId) {
    this.memory.delete(chatId);
    try {
      const store = storage();
      if (store) store.removeItem(this.key(chatId));
    } catch {
      // Nothing stored to forget.
    }
  }
}

/** Every draft of every user of this browser goes (a logout). */
export function forgetDrafts() {
  const store = storage();
  if (!store) return;
  try {
    const keys = [];
    for (let i = 0; i < store.length; i += 1) {
      const key = store.key(i);
      if (key && key.startsWith(PREFIX)) keys.push(key);
    }
    for (const key of keys) store.removeItem(key);
  } catch {
    // Storage refused: nothing was kept.
  }
}
