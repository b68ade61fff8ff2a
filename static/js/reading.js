// Read reports: which messages of others the reader has actually had on screen.
// The highest such id goes to the server (debounced); the pointer only moves forward.

import { debounce } from './dom.js';

const READ_REPORT_DELAY_MS = 300;
const READ_THRESHOLDS = [0, 0.1, 0.25, 0.5, 0.75, 1];

export class ReadTracker {
  /**
   * scroller: the history element (the observers' root); me: {id};
   * ask: a settled Socket.IO request; onRead(chatId, unreadCount, lastReadId) after the
   * server confirmed a report; notify(text) for a failed one.
   */
  constructor({ scroller, me, ask, onRead, notify }) {
    this.me = me;
    this.ask = ask;
    this.onRead = onRead;
    this.notify = notify;
    this.observer = new IntersectionObserver(
      (entries) => this.onEntries(entries),
      { root: scroller, threshold: READ_THRESHOLDS },
    );
    this.reportSoon = debounce(() => this.report(), READ_REPORT_DELAY_MS);
    this.elements = new Map();
    this.reset(null, 0);
    document.addEventListener('visibilitychange', () => this.noteSeen());
  }

  /** Start tracking a chat whose pointer stands at `lastReadId`. */
  reset(chatId, lastReadId) {
    this.chatId = chatId;
    this.lastReadId = lastReadId;
    this.seenId = 0;
    this.visible = new Set();
    this.elements.clear();
  }

  /** Report what was seen in the chat being left, then stop observing. */
  leave() {
    this.reportSoon.cancel();
    if (this.chatId && this.seenId > this.lastReadId) this.report();
    this.observer.disconnect();
    this.reset(null, 0);
  }

  /** Watch a stored message's element when it is someone else's and still unread. */
  watch(el, message) {
    if (message.sender_id === this.me.id || message.id <= this.lastReadId) return;
    this.elements.set(message.id, el);
    this.observer.observe(el);
  }

  /** Another tab moved the pointer: stop watching what it covers. */
  readElsewhere(lastReadId) {
    if (Number.isInteger(lastReadId) && lastReadId > this.lastReadId) this.advance(lastReadId);
  }

  onEntries(entries) {
    for (const entry of entries) {
      const id = Number(entry.target.dataset.id);
      const rootHeight = entry.rootBounds ? entry.rootBounds.height : 0;
      // Half of the message, or half of the view for a message taller than that.
      const seen = entry.isIntersecting
        && (entry.intersectionRatio >= 0.5 || entry.intersectionRect.height >= rootHeight / 2);
      if (seen) this.visible.add(id);
      else this.visible.delete(id);
    }
    this.noteSeen();
  }

  noteSeen() {
    if (document.visibilityState !== 'visible' || !this.chatId) return;
    let highest = 0;
    for (const id of this.visible) highest = Math.max(highest, id);
    if (highest > this.lastReadId && highest > this.seenId) {
      this.seenId = highest;
      this.reportSoon();
    }
  }

  /** After a reconnect: report what was seen while the connection was down. */
  resend() {
    if (this.chatId && this.seenId > this.lastReadId) this.report();
  }

  async report() {
    const { chatId, seenId } = this;
    if (!chatId || seenId <= this.lastReadId) return;
    const res = await this.ask('new_message_count_updated', { chat_id: chatId, last_read_id: seenId });
    if (!res.ok) {
      // Offline: resend() reports it after the reconnect; nothing for the reader to do.
      if (!res.offline) this.notify(res.error);
      return;
    }
    const pointer = Number.isInteger(res.last_read_id) ? res.last_read_id : seenId;
    if (chatId === this.chatId) this.advance(pointer);
    this.onRead(chatId, res.unread_count, pointer, res.mention_count);
  }

  advance(lastReadId) {
    this.lastReadId = Math.max(this.lastReadId, lastReadId);
    for (const [id, el] of this.elements) {
      if (id > this.lastReadId) continue;
      this.observer.unobserve(el);
      this.elements.delete(id);
      this.visible.delete(id);
    }
  }
}
