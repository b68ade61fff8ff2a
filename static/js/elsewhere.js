// On a phone the open conversation fills the screen and the chat list is out of sight, so
// activity in other chats would change nothing visible. The Back button counts the unread
// messages of the other chats, and a short notice ("New message from X in Y") appears at
// the top of the conversation: tapping it opens that chat. The notice is announced politely
// and never takes the focus.

import { chatDisplayName, h, isNarrow } from './dom.js';

const NOTICE_MS = 8000;

export class ActivityElsewhere {
  /**
   * me: {id}; onOpen(chatId): the notice was tapped; isConversationShown(): true while the
   * phone shows the conversation rather than the list.
   */
  constructor({ root, me, onOpen, isConversationShown }) {
    this.me = me;
    this.onOpen = onOpen;
    this.isConversationShown = isConversationShown;
    this.timer = null;
    this.chatId = null;
    this.history = root.querySelector('#history');

    const back = root.querySelector('#back-button');
    this.count = h('span', { className: 'back-count', 'aria-hidden': 'true', hidden: true });
    this.countWords = h('span', { className: 'visually-hidden' });
    back.append(this.count, this.countWords);

    // The live region is on the page from the start, so that what appears in it is read out.
    this.button = h('button', { type: 'button', className: 'elsewhere-notice', hidden: true });
    this.region = h('div', { className: 'elsewhere', role: 'status' }, this.button);
    root.querySelector('.conversation-header').after(this.region);
    this.button.addEventListener('click', () => {
      const { chatId } = this;
      this.hide();
      if (chatId !== null) this.onOpen(chatId);
    });
  }

  /** The unread messages of every chat but the open one. */
  setCount(count) {
    this.count.hidden = count <= 0;
    this.count.textContent = count > 99 ? '99+' : String(count);
    this.countWords.textContent = count > 0 ? `, ${count} unread in other chats` : '';
  }

  /** A message reached `chat`, which is not the open chat. */
  show(chat, message) {
    if (!chat || !message || message.sender_id === this.me.id) return;
    if (!isNarrow() || !this.isConversationShown()) return;
    const sender = message.sender_name || 'someone';
    const where = chat.kind === 'channel' ? ` in ${chatDisplayName(chat, this.me.id)}` : '';
    this.chatId = chat.id;
    this.button.textContent = `New message from ${sender}${where}`;
    this.button.hidden = false;
    this.hideLater();
  }

  /** Gone after a few seconds, unless the keyboard is on it. */
  hideLater() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.button === document.activeElement) this.hideLater();
      else this.hide();
    }, NOTICE_MS);
  }

  hide() {
    clearTimeout(this.timer);
    this.timer = null;
    this.chatId = null;
    // A notice that had the keyboard hands it to the conversation below it.
    if (this.button === document.activeElement) this.history.focus({ preventScroll: true });
    this.button.hidden = true;
    this.button.textContent = '';
  }
}
