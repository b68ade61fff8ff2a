// Text messages on their way to the server. Each is shown at once and keeps the client_id
// chosen when it was written, so a retry (automatic or the Retry button) never stores a
// second row. They go out one at a time, in the order they were written: the server keeps
// one socket's order, but a message whose ack was lost goes again, possibly on a new socket,
// and must not be overtaken by the next one.

import { isRetryable, retryDelay } from './net.js';

const SEND_TIMEOUT_MS = 10000;
// The server's flood limit refuses with code "rate_limited" (older servers: this sentence)
// and retry_after seconds; the message waits that long, then goes again.
const TOO_FAST = /too fast/i;
const TOO_FAST_PAUSE_MS = 2000;

/** An entry's state: waiting (for the connection or its turn), sending, or failed. */
export const WAITING = 'waiting';
export const SENDING = 'sending';
export const FAILED = 'failed';

export class Outbox {
  /**
   * ask(event, payload, timeoutMs): a settled Socket.IO request; isConnected();
   * onChange(entry): an entry's state changed; onStored(entry, message): the server
   * stored it (message is the stored copy).
   */
  constructor({ ask, isConnected, onChange, onStored }) {
    this.ask = ask;
    this.isConnected = isConnected;
    this.onChange = onChange;
    this.onStored = onStored;
    this.entries = new Map();
    // Paused until the page is in sync with the server (after each (re)connect), so
    // nothing written while away overtakes what the catch-up brings.
    this.paused = true;
    this.busy = false;
    this.holdUntil = 0;
    this.wakeTimer = null;
  }

  get size() {
    return this.entries.size;
  }

  /** Queue a message ({chat_id, body, client_id, ...}); returns its entry. */
  add(message) {
    // retries: how many passing failures in a row it met (its next wait grows with them).
    const entry = { message, state: WAITING, error: '', auto: true, retries: 0, retrying: '' };
    this.entries.set(message.client_id, entry);
    this.onChange(entry);
    this.flush();
    return entry;
  }

  /** Entries of one chat, oldest first. */
  forChat(chatId) {
    return [...this.entries.values()].filter((entry) => entry.message.chat_id === chatId);
  }

  has(clientId) {
    return this.entries.has(clientId);
  }

  /** The Retry button: send again with the same client_id. */
  retry(clientId) {
    const entry = this.entries.get(clientId);
    if (!entry || entry.state === SENDING) return;
    this.setState(entry, WAITING);
    this.flush();
  }

  /** The server's copy arrived another way (catch-up, another tab): forget the entry. */
  settle(clientId) {
    this.entries.delete(clientId);
  }

  /** The connection dropped: hold everything until resume(). */
  pause() {
    this.paused = true;
    for (const entry of this.entries.values()) {
      if (entry.state === WAITING) this.onChange(entry);
    }
  }

  /** Back in sync: what failed for want of a connection goes again, then everything waiting. */
  resume() {
    this.paused = false;
    for (const entry of this.entries.values()) {
      if (entry.state === FAILED && entry.auto) this.setState(entry, WAITING);
    }
    this.flush();
  }

  /** True while messages wait because the page is offline or catching up. */
  isHeld() {
    return this.paused || !this.isConnected();
  }

  setState(entry, state, error = '') {
    entry.state = state;
    entry.error = error;
    this.onChange(entry);
  }

  async flush() {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.isHeld() && Date.now() >= this.holdUntil) {
        const next = [...this.entries.values()].find((entry) => entry.state === WAITING);
        if (!next) break;
        await this.sendOne(next);
      }
    } finally {
      this.busy = false;
    }
  }

  /** Flush once holdUntil has passed (a timer may fire a little early: it looks again). */
  wakeAfterHold() {
    clearTimeout(this.wakeTimer);
    const wait = this.holdUntil - Date.now();
    this.wakeTimer = setTimeout(() => {
      if (Date.now() < this.holdUntil) this.wakeAfterHold();
      else this.flush();
    }, Math.max(0, wait) + 1);
  }

  /**
   * Send nothing for `waitMs`, then `entry` again (it stays first in line); `why` is shown
   * on the message meanwhile.
   */
  holdAll(entry, waitMs, why) {
    this.holdUntil = Date.now() + Math.ceil(waitMs);
    this.wakeAfterHold();
    entry.retrying = why;
    this.setState(entry, WAITING);
  }

  async sendOne(entry) {
    const { message } = entry;
    const clientId = message.client_id;
    this.setState(entry, SENDING);
    entry.retrying = '';
    const payload = { chat_id: message.chat_id, body: message.body, client_id: clientId };
    if (Number.isInteger(message.reply_to_id)) payload.reply_to_id = message.reply_to_id;
    const res = await this.ask('message_sent', payload, SEND_TIMEOUT_MS);
    if (this.entries.get(clientId) !== entry) return;
    if (res.ok && res.message && Number.isInteger(res.message.id)) {
      this.entries.delete(clientId);
      this.onStored(entry, res.message);
      return;
    }
    if (res.offline || (res.timedOut && !this.isConnected())) {
      // The connection went while it was on its way: it goes again after the reconnect.
      this.setState(entry, WAITING);
      return;
    }
    if (res.code === 'rate_limited' || TOO_FAST.test(res.error || '')) {
      const seconds = Number(res.retry_after);
      const wait = seconds > 0 ? seconds * 1000 + Math.random() * 500 : TOO_FAST_PAUSE_MS;
      this.holdAll(entry, wait, 'Sending too fast. Trying again in a moment…');
      return;
    }
    if (isRetryable(res)) {
      // A passing failure on the server (a locked database, a restart): the same message
      // (same client_id) goes again by itself; the ones after it wait, to keep the order.
      this.holdAll(entry, retryDelay(entry.retries), 'The server is busy. Trying again…');
      entry.retries += 1;
      return;
    }
    // No answer in time (auto: tried again after the next reconnect), or a refusal.
    entry.auto = Boolean(res.timedOut);
    this.setState(entry, FAILED, res.timedOut ? '' : (res.error || 'The server did not return the message.'));
  }
}
