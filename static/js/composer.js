// The message composer: Enter sends, Shift+Enter starts a new line, length checks,
// a throttled "typing" signal, and the open chat's draft (drafts.js): switching chats
// keeps what was written in the chat left and brings back the draft of the chat opened.

import { setNote, textLength } from './dom.js';

const TYPING_INTERVAL_MS = 3000;
const COUNT_FROM_FRACTION = 0.9;

export class Composer {
  /**
   * maxLength: the server's limit in characters; onSend(body) returns true once the
   * message is on its way, else false or a sentence saying why not; onTyping() is called
   * at most every 3 s while the user types; drafts: a Drafts store.
   */
  constructor({ root, maxLength, onSend, onTyping, drafts }) {
    this.maxLength = maxLength;
    this.onSend = onSend;
    this.onTyping = onTyping;
    this.drafts = drafts;
    this.chatId = null;
    this.lastTypingAt = 0;
    this.form = root.querySelector('#composer');
    this.input = root.querySelector('#message-input');
    this.button = root.querySelector('#send-button');
    this.errorEl = root.querySelector('#composer-error');
    this.countEl = root.querySelector('#composer-count');

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (event) => {
      // keyCode 229: some browsers report IME composition only this way.
      if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener('input', () => {
      this.autosize();
      this.updateCount();
      this.drafts.set(this.chatId, this.input.value);
      const now = Date.now();
      if (this.input.value.trim() && now - this.lastTypingAt >= TYPING_INTERVAL_MS) {
        this.lastTypingAt = now;
        this.onTyping();
      }
    });
  }

  enable(on) {
    this.input.disabled = !on;
    this.button.disabled = !on;
    this.lastTypingAt = 0;
  }

  /** The composer now writes to `chatId`: the chat left keeps its draft, this one's returns. */
  setChat(chatId) {
    if (chatId === this.chatId) return;
    this.drafts.set(this.chatId, this.input.value);
    this.chatId = chatId;
    this.setText(chatId ? this.drafts.get(chatId) : '');
  }

  setText(text) {
    this.input.value = text;
    this.lastTypingAt = 0;
    this.showError('');
    this.autosize();
    this.updateCount();
  }

  /** The text as a file's caption ('' when there is none or it is too long for one). */
  caption() {
    const text = this.input.value.trim();
    return textLength(text) <= this.maxLength ? text : '';
  }

  /** A file went to `chatId` with `caption`: the caption leaves the composer and the draft. */
  captionSent(chatId, caption) {
    if (!caption) return;
    if (chatId === this.chatId) {
      if (this.input.value.trim() === caption) this.setText('');
      else return;
    } else if (this.drafts.get(chatId).trim() !== caption) {
      return;
    }
    this.drafts.forget(chatId);
  }

  focus() {
    if (!this.input.disabled) this.input.focus();
  }

  showError(text) {
    setNote(this.errorEl, text);
  }

  submit() {
    const body = this.input.value.trim();
    if (!body) {
      this.input.focus();
      return;
    }
    const length = textLength(body);
    if (length > this.maxLength) {
      this.showError(`This message is ${length} characters long; the limit is ${this.maxLength}. Shorten it or split it in two.`);
      return;
    }
    const sent = this.onSend(body);
    if (sent !== true) {
      this.showError(typeof sent === 'string' ? sent : 'Open a chat before sending a message.');
      return;
    }
    this.drafts.forget(this.chatId);
    this.setText('');
  }

  autosize() {
    // The CSS caps the height; setting it through CSSOM is allowed under a strict CSP.
    this.input.style.height = 'auto';
    this.input.style.height = `${this.input.scrollHeight + 2}px`;
  }

  updateCount() {
    const length = textLength(this.input.value.trim());
    const left = this.maxLength - length;
    let text = '';
    if (length > this.maxLength) text = `${-left} characters over the limit of ${this.maxLength}`;
    else if (length >= this.maxLength * COUNT_FROM_FRACTION) text = `${left} characters left`;
    setNote(this.countEl, text);
    this.countEl.classList.toggle('over-limit', left < 0);
  }
}
