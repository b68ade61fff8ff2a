// The right panel's open chat: opening it (join_chat), live messages, messages on their way
// (see outbox.js), the catch-up after a reconnect, read reports and the typing line.
// How a message looks is in messages.js, the list's order, days and groups in timeline.js,
// paging in paging.js and the scroll position in scroller.js.

import { chatDisplayName, newClientId, setNote } from './dom.js';
import { MessageActions } from './message_actions.js';
import { buildMessage, renderStatus } from './messages.js';
import { WAITING } from './outbox.js';
import { HistoryPager } from './paging.js';
import { ReadTracker } from './reading.js';
import { excerptOf, ReplyBar } from './reply_bar.js';
import { HistoryScroller } from './scroller.js';
import { Timeline } from './timeline.js';
import { TypingLine } from './typing.js';

// performance.measure() names: the time from join_chat's answer to the chat drawn on screen.
export const OPENED_MARK = 'chat-open:answer';
export const RENDERED_MEASURE = 'chat-open:render';

function byId(a, b) {
  return a.id - b.id;
}

/** Record how long the browser took from join_chat's answer to the first frame painted. */
function measureRender(detail) {
  // rAF runs before the next paint; a task queued from it runs after that paint.
  requestAnimationFrame(() => setTimeout(() => {
    performance.clearMeasures(RENDERED_MEASURE);
    performance.measure(RENDERED_MEASURE, { start: OPENED_MARK, detail });
  }, 0));
}

export class Conversation {
  /**
   * me: {id, username}; ask(event, payload, timeoutMs): a settled Socket.IO request;
   * outbox: the Outbox that sends text messages; viewer: the ImageViewer for pictures;
   * onRead(chatId, unreadCount, lastReadId): the server confirmed a read report;
   * notify(text): show a problem to the user; openAt(chatId, messageId): show a message
   * (a reply's original); onEdited(message): the user's edit was stored.
   */
  constructor({ root, me, ask, outbox, viewer, onRead, notify, openAt, onEdited }) {
    this.me = me;
    this.ask = ask;
    this.outbox = outbox;
    this.viewer = viewer;
    this.notify = notify;
    this.seq = 0;
    this.openingChatId = null;
    this.early = [];

    this.titleEl = root.querySelector('#chat-title');
    this.emptyEl = root.querySelector('#conversation-empty');
    this.history = root.querySelector('#history');
    this.timeline = new Timeline(root.querySelector('#messages'));
    this.typing = new TypingLine(root.querySelector('#typing-indicator'));
    this.scroller = new HistoryScroller({
      history: this.history,
      jumpButton: root.querySelector('#jump-latest'),
      showJump: () => Boolean(this.chatId),
      moreBelow: () => this.pager.hasMoreAfter,
    });
    this.pager = new HistoryPager({
      root,
      ask,
      scroller: this.scroller,
      onOlder: (messages) => this.addOlder(messages),
      onNewer: (messages) => this.addNewer(messages),
      isEmpty: () => this.byId.size === 0 && this.pending.size === 0,
      notify,
    });
    this.reading = new ReadTracker({
      scroller: this.history, me, ask, onRead, notify,
    });
    const input = root.querySelector('#message-input');
    this.replyBar = new ReplyBar({ composer: root.querySelector('#composer'), input });
    this.actions = new MessageActions({
      conversation: this,
      list: this.timeline.list,
      input,
      replyBar: this.replyBar,
      ask,
      openAt,
      onChanged: onEdited,
      notify,
    });
    this.resetState();
  }

  resetState() {
    this.chatId = null;
    this.chat = null;
    this.byId = new Map();
    this.pending = new Map();
    // False from a disconnect until the catch-up: a message that reaches the page another
    // way meanwhile (an upload's answer) must not move newestId past what was missed.
    this.synced = true;
    this.typing.clearAll();
  }

  /** Leave whatever is shown: report what was read, stop paging, empty the list. */
  clear() {
    this.reading.leave();
    this.pager.reset(null);
    this.resetState();
    this.timeline.clear();
    this.scroller.updateJumpButton();
  }

  showEmpty() {
    this.seq += 1;
    this.openingChatId = null;
    this.clear();
    this.titleEl.textContent = 'No chat open';
    this.history.hidden = true;
    this.emptyEl.hidden = false;
  }

  /**
   * Open a chat (join_chat); resolves with the server's answer, or null. With `aroundId`
   * it opens on the page around that message, scrolled to it and highlighted (a message
   * no longer there: the chat opens as usual, with a note).
   */
  async open(chatId, knownChat, { aroundId = null } = {}) {
    const seq = ++this.seq;
    this.clear();
    this.openingChatId = chatId;
    this.early = [];
    this.replyBar.chatOpened(chatId);
    this.titleEl.textContent = knownChat ? chatDisplayName(knownChat, this.me.id) : 'Loading…';
    this.emptyEl.hidden = true;
    this.history.hidden = false;
    this.history.setAttribute('aria-busy', 'true');
    setNote(this.pager.topNote, 'Loading messages…');

    const payload = { chat_id: chatId };
    if (aroundId !== null) payload.around_id = aroundId;
    const res = await this.ask('join_chat', payload);
    if (seq !== this.seq) return null;
    performance.clearMarks(OPENED_MARK);
    performance.mark(OPENED_MARK);
    this.openingChatId = null;
    this.history.setAttribute('aria-busy', 'false');
    // Only messages written while the chat loaded are shown; they are rebuilt below.
    this.timeline.clear();
    this.pending.clear();
    if (!res.ok && aroundId !== null && !res.offline && !res.retryable) {
      this.notify(res.error);
      return this.open(chatId, knownChat);
    }
    if (!res.ok) {
      setNote(this.pager.topNote, res.offline ? 'You are offline. The chat opens when the connection is back.' : res.error);
      return null;
    }

    const chat = res.chat || knownChat || { id: chatId, kind: 'channel', name: '' };
    const messages = Array.isArray(res.messages) ? [...res.messages].sort(byId) : [];
    this.chatId = chatId;
    this.chat = chat;
    this.titleEl.textContent = chatDisplayName(chat, this.me.id);
    this.pager.reset(chatId, {
      hasMoreBefore: Boolean(res.has_more_before),
      hasMoreAfter: Boolean(res.has_more_after),
    });
    const firstUnreadId = Number.isInteger(res.first_unread_id) ? res.first_unread_id : null;
    let lastReadId = messages.length ? messages[messages.length - 1].id : 0;
    if (Number.isInteger(chat.last_read_id)) lastReadId = chat.last_read_id;
    else if (firstUnreadId !== null) lastReadId = firstUnreadId - 1;
    this.reading.reset(chatId, lastReadId);

    const elements = [];
    let firstUnread = null;
    for (const message of messages) {
      if (!Number.isInteger(message.id) || this.byId.has(message.id)) continue;
      const el = this.buildStored(message);
      if (firstUnread === null && firstUnreadId !== null && message.id >= firstUnreadId) firstUnread = el;
      elements.push(el);
    }
    for (const entry of this.outbox.forChat(chatId)) elements.push(this.buildPending(entry));
    this.timeline.fill(elements, firstUnread);
    this.pager.extend(messages);
    this.pager.updateTopNote();

    const early = this.early;
    this.early = [];
    for (const message of early) this.receive(message);

    if (aroundId !== null && this.byId.has(aroundId)) this.showMessage(aroundId);
    else if (this.timeline.divider) this.scroller.scrollToDivider(this.timeline.divider);
    else this.scroller.scrollToBottom();
    this.pager.rearm();
    measureRender({ chatId, messages: elements.length });
    return res;
  }

  /**
   * Bring a message of the open chat into view and highlight it (it keeps the highlight
   * until another is shown); false when it is not loaded.
   */
  showMessage(messageId) {
    const el = this.byId.get(messageId);
    if (!el || !el.isConnected) return false;
    for (const old of this.timeline.list.querySelectorAll('.message.highlighted')) {
      old.classList.remove('highlighted');
    }
    el.classList.add('highlighted');
    el.scrollIntoView({ block: 'center' });
    this.scroller.pinned = this.scroller.isAtBottom();
    this.scroller.updateJumpButton();
    // The reader (and a screen reader) lands on it; Tab goes on from there.
    el.tabIndex = -1;
    el.focus({ preventScroll: true });
    return true;
  }

  // Changes to messages already shown (message_actions.js asks for them; the server tells
  // every socket of the chat)

  /** message_updated, or the ack of one's own edit: the message is drawn afresh. */
  updateMessage(message) {
    const el = message && this.byId.get(message.id);
    if (!el || message.chat_id !== this.chatId) return;
    const atBottom = this.scroller.isAtBottom();
    const fresh = buildMessage(message, { me: this.me, viewer: this.viewer });
    // An edit or the actions panel open on it stay open.
    const kept = [...el.querySelectorAll(':scope > .edit-form, :scope > .message-menu')];
    const keep = ['continued', 'highlighted', 'editing', 'menu-open'].filter((c) => el.classList.contains(c));
    el.className = fresh.className;
    el.classList.add(...keep);
    el.replaceChildren(...fresh.childNodes);
    el.message = message;
    for (const node of kept) {
      if (node.classList.contains('edit-form')) {
        const body = el.querySelector('.message-body');
        if (body) body.hidden = true;
        el.insertBefore(node, el.querySelector('.reactions'));
      } else {
        el.append(node);
      }
    }
    for (const other of this.byId.values()) {
      const quoted = other.message && other.message.reply_to;
      if (quoted && quoted.id === message.id && !quoted.deleted) {
        quoted.sender_name = message.sender_name;
        quoted.excerpt = excerptOf(message);
        this.redraw(other);
      }
    }
    if (atBottom) this.scroller.scrollToBottom();
  }

  /** message_removed, or the ack of one's own deletion: it leaves the history. */
  removeMessage(chatId, messageId) {
    this.replyBar.removed(messageId);
    const el = this.byId.get(messageId);
    if (!el || chatId !== this.chatId) return;
    this.byId.delete(messageId);
    this.timeline.remove(el);
    for (const other of this.byId.values()) {
      const quoted = other.message && other.message.reply_to;
      if (quoted && quoted.id === messageId && !quoted.deleted) {
        other.message.reply_to = { id: messageId, deleted: true };
        this.redraw(other);
      }
    }
    this.pager.updateTopNote();
    this.scroller.updateJumpButton();
  }

  /** reactions_updated, or the ack of one's own reaction. */
  setReactions(chatId, messageId, reactions) {
    const el = this.byId.get(messageId);
    if (!el || chatId !== this.chatId || !Array.isArray(reactions)) return;
    this.updateMessage({ ...el.message, reactions });
  }

  /** The reader's newest stored message shown (Up in an empty text box edits it). */
  lastOwnMessage() {
    let found = null;
    for (const [id, el] of this.byId) {
      if (el.message && el.message.sender_id === this.me.id && el.isConnected && (!found || id > found[0])) {
        found = [id, el];
      }
    }
    return found && found[1];
  }

  redraw(el) {
    this.updateMessage(el.message);
  }

  /** The connection dropped: what shows may fall behind until catchUp(). */
  markStale() {
    this.synced = false;
  }

  /**
   * After a reconnect: fetch what came after the newest message shown. After a `resync`
   * (`since`, the server's time from which live messages may have been missed), fetch
   * from the newest message shown that is older than that: newer ones may have arrived
   * around a gap.
   */
  async catchUp(since = null) {
    if (!this.chatId) return null;
    const afterId = since === null ? this.pager.newestId : this.lastShownBefore(since);
    if (afterId === null) return this.open(this.chatId, this.chat);
    const seq = this.seq;
    const chatId = this.chatId;
    const res = await this.ask('join_chat', { chat_id: chatId, after_id: afterId });
    if (seq !== this.seq) return null;
    if (!res.ok) {
      if (!res.offline) this.notify(res.error);
      return null;
    }
    const atBottom = this.scroller.isAtBottom();
    this.synced = true;
    this.reading.resend();
    this.addNewer(res.messages);
    this.pager.hasMoreAfter = Boolean(res.has_more_after);
    const page = Array.isArray(res.messages) ? res.messages.filter((m) => Number.isInteger(m.id)) : [];
    // More than a page since afterId: the next page starts after this one, not after
    // the newest shown, so nothing between them is skipped.
    if (this.pager.hasMoreAfter && page.length) {
      this.pager.newestId = Math.max(...page.map((m) => m.id));
    }
    if (atBottom) this.scroller.scrollToBottom();
    this.pager.rearm();
    return res;
  }

  /**
   * The newest message shown that was created before `since`, else the oldest shown
   * (everything after it is fetched again; what is older was never on screen, paging
   * up brings it); null for an empty chat.
   */
  lastShownBefore(since) {
    let found = null;
    for (const [id, el] of this.byId) {
      if (Number(el.dataset.createdAt) < since && (found === null || id > found)) found = id;
    }
    return found ?? this.pager.oldestId;
  }

  /** message_received_from_current_chat */
  receive(message) {
    if (!message || !Number.isInteger(message.id)) return;
    if (this.openingChatId !== null && message.chat_id === this.openingChatId) {
      this.early.push(message);
      return;
    }
    if (message.chat_id !== this.chatId) return;
    this.typing.clear(message.sender_id);
    if (this.byId.has(message.id)) return;
    const atBottom = this.scroller.isAtBottom();
    if (message.sender_id === this.me.id && this.pending.has(message.client_id)) {
      this.confirm(message.client_id, message);
      return;
    }
    // With a gap below what is shown, a live message would land out of place:
    // it arrives with the next page when the reader scrolls down.
    if (this.pager.hasMoreAfter) {
      this.scroller.noteNewBelow();
      return;
    }
    this.timeline.insertStored(this.buildStored(message), message.id);
    if (this.synced) this.pager.newestId = Math.max(this.pager.newestId ?? 0, message.id);
    if (this.pager.oldestId === null) this.pager.oldestId = message.id;
    this.pager.updateTopNote();
    if (atBottom) this.scroller.scrollToBottom();
    else this.scroller.noteNewBelow();
  }

  /** The user's own upload was stored: show it (once) and bring it into view. */
  showOwn(message) {
    if (!message) return;
    this.receive(message);
    if (message.chat_id === this.chatId && !this.pager.hasMoreAfter) this.scroller.scrollToBottom();
  }

  /** True when a new message in the open chat will be seen without scrolling. */
  isFollowingLive() {
    return document.visibilityState === 'visible'
      && this.isShown()
      && !this.pager.hasMoreAfter
      && this.scroller.isAtBottom();
  }

  /** False while the panel is hidden (a phone showing the chat list). */
  isShown() {
    return !this.history.hidden && this.history.getClientRects().length > 0;
  }

  /** The chat shown, open or still loading (a message may be written meanwhile). */
  shownChatId() {
    return this.openingChatId ?? this.chatId;
  }

  /** Show a message as pending and queue it; returns false when no chat is open. */
  send(body) {
    const chatId = this.shownChatId();
    if (!chatId) return false;
    const message = {
      id: null,
      chat_id: chatId,
      sender_id: this.me.id,
      sender_name: this.me.username,
      sender_display_name: this.me.displayName,
      body,
      created_at: Date.now(),
      client_id: newClientId(),
      attachment: null,
      reply_to: this.replyBar.take(chatId),
    };
    if (message.reply_to) message.reply_to_id = message.reply_to.id;
    this.timeline.append(this.buildPending({ message, state: WAITING, error: '' }));
    this.pager.updateTopNote();
    this.scroller.scrollToBottom();
    this.outbox.add(message);
    return true;
  }

  /** The outbox moved an entry on (waiting, sending, failed). */
  outboxChanged(entry) {
    const shown = entry.message.chat_id === this.shownChatId();
    const el = shown ? this.pending.get(entry.message.client_id) : null;
    if (el) this.showStatus(el, entry);
  }

  /** The outbox's message was stored: the pending copy becomes the stored one. */
  outboxStored(entry, message) {
    // While the chat loads, the server's answer may or may not include it: receive() after.
    if (message.chat_id === this.openingChatId) this.early.push(message);
    else if (message.chat_id === this.chatId) this.confirm(entry.message.client_id, message);
  }

  /** Another tab of this user read the open chat up to `lastReadId`. */
  readElsewhere(chatId, lastReadId) {
    if (chatId === this.chatId) this.reading.readElsewhere(lastReadId);
  }

  /** user_typing */
  showTyping({ chat_id: chatId, user_id: userId, username }) {
    if (chatId !== this.chatId || userId === this.me.id) return;
    this.typing.show(userId, username);
  }

  // Messages in the list

  buildStored(message) {
    const el = buildMessage(message, { me: this.me, viewer: this.viewer });
    this.byId.set(message.id, el);
    this.reading.watch(el, message);
    return el;
  }

  /** The element of a message still in the outbox. */
  buildPending(entry) {
    const el = buildMessage(entry.message, { me: this.me, viewer: this.viewer, pending: true });
    this.pending.set(entry.message.client_id, el);
    this.showStatus(el, entry, { scroll: false });
    return el;
  }

  showStatus(el, entry, { scroll = true } = {}) {
    const atBottom = scroll && this.scroller.isAtBottom();
    const hadFocus = el.contains(document.activeElement);
    renderStatus(el, entry, {
      held: this.outbox.isHeld(),
      onRetry: () => this.outbox.retry(el.dataset.clientId),
    });
    // The Retry button the user pressed is gone; keep the keyboard in the history.
    if (hadFocus && !el.contains(document.activeElement)) this.history.focus({ preventScroll: true });
    if (el.isConnected) this.timeline.settle(el);
    if (atBottom) this.scroller.scrollToBottom();
  }

  addOlder(messages) {
    const elements = [];
    for (const message of messages) {
      if (!Number.isInteger(message.id) || this.byId.has(message.id)) continue;
      elements.push(this.buildStored(message));
    }
    this.timeline.prepend(elements);
  }

  addNewer(messages) {
    if (!Array.isArray(messages)) return;
    for (const message of [...messages].sort(byId)) {
      if (!Number.isInteger(message.id)) continue;
      this.pager.extend([message]);
      if (this.byId.has(message.id)) continue;
      if (message.sender_id === this.me.id && this.pending.has(message.client_id)) {
        this.confirm(message.client_id, message);
      } else {
        this.timeline.insertStored(this.buildStored(message), message.id);
      }
    }
    this.pager.updateTopNote();
  }

  /** A pending send was stored: the pending element becomes the stored message. */
  confirm(clientId, message) {
    const el = this.pending.get(clientId);
    this.pending.delete(clientId);
    this.outbox.settle(clientId);
    if (!el) return;
    if (this.byId.has(message.id)) {
      this.timeline.remove(el);
      return;
    }
    // Reuse the node the reader (and a screen reader) already has instead of adding a copy.
    const fresh = buildMessage(message, { me: this.me, viewer: this.viewer });
    el.className = fresh.className;
    el.dataset.id = String(message.id);
    el.dataset.createdAt = String(message.created_at);
    el.replaceChildren(...fresh.childNodes);
    el.message = fresh.message;
    this.byId.set(message.id, el);
    this.reading.watch(el, message);
    if (this.timeline.isInPlace(el, message.id)) {
      this.timeline.settle(el);
    } else {
      this.timeline.remove(el);
      this.timeline.insertStored(el, message.id);
    }
    if (!this.pager.hasMoreAfter && this.synced) {
      this.pager.newestId = Math.max(this.pager.newestId ?? 0, message.id);
    }
    if (this.pager.oldestId === null) this.pager.oldestId = message.id;
    this.pager.updateTopNote();
  }
}
