// The message composer: Enter sends, Shift+Enter starts a new line, length checks,
// and a throttled "typing" signal.

import { setNote, textLength } from './dom.js';

const TYPING_INTERVAL_MS = 3000;
const COUNT_FROM_FRACTION = 0.9;

export class Composer {
  /**
   * maxLength: the server's limit in characters; onSend(body) returns true once the
   * message is on its way, else false or a sentence saying why not; onTyping() is called
   * at most every 3 s while the user types.
   */
  constructor({ root, maxLength, onSend, onTyping }) {
    this.maxLength = maxLength;
    this.onSend = onSend;
    this.onTyping = onTyping;
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
    this.showError('');
    this.input.value = '';
    this.lastTypingAt = 0;
    this.autosize();
    this.updateCount();
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
