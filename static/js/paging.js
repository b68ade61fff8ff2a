// History paging: near the top of what is shown, the page of older messages before the
// oldest id; near the bottom, when the chat opened at its first unread, the page after the
// newest. Pages are cut by message id, so nothing shows twice or goes missing.

import { setNote } from './dom.js';

export class HistoryPager {
  /**
   * ask: a settled Socket.IO request; scroller: the HistoryScroller;
   * onOlder(messages) / onNewer(messages): show a page (ids ascending);
   * isEmpty(): nothing at all is shown; notify(text): show a problem.
   */
  constructor({ root, ask, scroller, onOlder, onNewer, isEmpty, notify }) {
    this.ask = ask;
    this.scroller = scroller;
    this.onOlder = onOlder;
    this.onNewer = onNewer;
    this.isEmpty = isEmpty;
    this.notify = notify;
    this.topSentinel = root.querySelector('#top-sentinel');
    this.bottomSentinel = root.querySelector('#bottom-sentinel');
    this.topNote = root.querySelector('#history-top-note');
    this.bottomNote = root.querySelector('#history-bottom-note');
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        if (entry.target === this.topSentinel) this.loadOlder();
        else if (entry.target === this.bottomSentinel) this.loadNewer();
      }
    }, { root: scroller.history, rootMargin: '300px 0px' });
    this.epoch = 0;
    this.reset(null);
  }

  /** Start paging the chat `chatId` (null: none); the bounds start empty. */
  reset(chatId, { hasMoreBefore = false, hasMoreAfter = false } = {}) {
    this.epoch += 1;
    this.observer.disconnect();
    this.chatId = chatId;
    this.oldestId = null;
    this.newestId = null;
    this.hasMoreBefore = hasMoreBefore;
    this.hasMoreAfter = hasMoreAfter;
    this.loadingBefore = false;
    this.loadingAfter = false;
    setNote(this.topNote, '');
    setNote(this.bottomNote, '');
  }

  /** Messages now shown widen the bounds. */
  extend(messages) {
    for (const message of messages) {
      if (!Number.isInteger(message.id)) continue;
      this.oldestId = this.oldestId === null ? message.id : Math.min(this.oldestId, message.id);
      this.newestId = this.newestId === null ? message.id : Math.max(this.newestId, message.id);
    }
  }

  /** Observe the sentinels afresh: observe() always reports the current state once. */
  rearm() {
    if (!this.chatId) return;
    for (const sentinel of [this.topSentinel, this.bottomSentinel]) {
      this.observer.unobserve(sentinel);
      this.observer.observe(sentinel);
    }
  }

  updateTopNote() {
    // While a chat loads, the note says so.
    if (!this.chatId) return;
    let text = '';
    if (this.loadingBefore) text = 'Loading earlier messages…';
    else if (this.isEmpty()) text = 'No messages yet. Write the first one.';
    else if (!this.hasMoreBefore) text = 'This is the beginning of the chat.';
    setNote(this.topNote, text);
  }

  /** Like updateTopNote, without moving what the reader looks at. */
  updateTopNoteInPlace() {
    this.scroller.keepInView(() => this.updateTopNote());
  }

  async loadOlder() {
    if (!this.chatId || !this.hasMoreBefore || this.loadingBefore || this.oldestId === null) return;
    const { epoch, chatId } = this;
    this.loadingBefore = true;
    this.updateTopNoteInPlace();
    const res = await this.ask('message_history_is_scrolled_to_the_top', {
      chat_id: chatId,
      before_id: this.oldestId,
    });
    if (epoch !== this.epoch) return;
    this.loadingBefore = false;
    if (!res.ok) {
      this.updateTopNoteInPlace();
      this.notify(res.error);
      return;
    }
    const messages = Array.isArray(res.messages) ? [...res.messages].sort((a, b) => a.id - b.id) : [];
    this.hasMoreBefore = Boolean(res.has_more_before) && messages.length > 0;
    this.scroller.keepInView(() => {
      this.onOlder(messages);
      this.extend(messages);
      this.updateTopNote();
    });
    this.rearm();
  }

  async loadNewer() {
    if (!this.chatId || !this.hasMoreAfter || this.loadingAfter || this.newestId === null) return;
    const { epoch, chatId } = this;
    this.loadingAfter = true;
    setNote(this.bottomNote, 'Loading newer messages…');
    const res = await this.ask('message_history_is_scrolled_to_the_bottom', {
      chat_id: chatId,
      after_id: this.newestId,
    });
    if (epoch !== this.epoch) return;
    this.loadingAfter = false;
    setNote(this.bottomNote, '');
    if (!res.ok) {
      this.notify(res.error);
      return;
    }
    const messages = Array.isArray(res.messages) ? res.messages : [];
    this.onNewer(messages);
    this.hasMoreAfter = Boolean(res.has_more_after) && messages.length > 0;
    this.scroller.updateJumpButton();
    this.rearm();
  }
}
