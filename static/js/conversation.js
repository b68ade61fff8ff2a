// The right panel's history: opening a chat, paging older and newer messages by id,
// live messages, messages on their way (see outbox.js), read reports and the typing line.

import { buildAttachment } from './attachments.js';
import {
  chatDisplayName, h, newClientId, setNote, timeElement,
} from './dom.js';
import { FAILED, SENDING, WAITING } from './outbox.js';
import { ReadTracker } from './reading.js';
import { TypingLine } from './typing.js';

const GROUP_WINDOW_MS = 5 * 60 * 1000;
const AT_BOTTOM_SLACK_PX = 48;

function byId(a, b) {
  return a.id - b.id;
}

function isMessage(node) {
  return Boolean(node && node.classList && node.classList.contains('message'));
}

function isStored(node) {
  return isMessage(node) && Boolean(node.dataset.id);
}

export class Conversation {
  /**
   * me: {id, username}; ask(event, payload, timeoutMs): a settled Socket.IO request;
   * outbox: the Outbox that sends text messages; viewer: the ImageViewer for pictures;
   * onRead(chatId, unreadCount, lastReadId): the server confirmed a read report;
   * notify(text): show a problem to the user.
   */
  constructor({ root, me, ask, outbox, viewer, onRead, notify }) {
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
    this.list = root.querySelector('#messages');
    this.topSentinel = root.querySelector('#top-sentinel');
    this.bottomSentinel = root.querySelector('#bottom-sentinel');
    this.topNote = root.querySelector('#history-top-note');
    this.bottomNote = root.querySelector('#history-bottom-note');
    this.typing = new TypingLine(root.querySelector('#typing-indicator'));
    this.jumpButton = root.querySelector('#jump-latest');

    this.resetState();

    this.pageObserver = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        if (entry.target === this.topSentinel) this.loadOlder();
        else if (entry.target === this.bottomSentinel) this.loadNewer();
      }
    }, { root: this.history, rootMargin: '300px 0px' });

    this.reading = new ReadTracker({
      scroller: this.history, me, ask, onRead, notify,
    });

    let scrollFrame = 0;
    this.pinned = true;
    this.history.addEventListener('scroll', () => {
      this.pinned = this.isAtBottom();
      if (scrollFrame) return;
      scrollFrame = requestAnimationFrame(() => {
        scrollFrame = 0;
        this.updateJumpButton();
      });
    }, { passive: true });
    // The upload tray, a growing text box or a phone's keyboard shrink the history: a reader
    // at the bottom stays at the bottom.
    new ResizeObserver(() => {
      if (this.pinned && !this.history.hidden) this.history.scrollTop = this.history.scrollHeight;
    }).observe(this.history);
    this.jumpButton.addEventListener('click', () => {
      this.scrollToBottom();
      this.history.focus({ preventScroll: true });
    });
  }

  resetState() {
    this.chatId = null;
    this.chat = null;
    this.byId = new Map();
    this.pending = new Map();
    this.oldestId = null;
    this.newestId = null;
    this.hasMoreBefore = false;
    this.hasMoreAfter = false;
    this.loadingBefore = false;
    this.loadingAfter = false;
    // False from a disconnect until the catch-up: a message that reaches the page another
    // way meanwhile (an upload's answer) must not move newestId past what was missed.
    this.synced = true;
    if (this.typing) this.typing.clearAll();
  }

  /** Leave whatever is shown: report what was read, stop observers, empty the list. */
  clear() {
    this.reading.leave();
    this.pageObserver.disconnect();
    this.resetState();
    this.list.replaceChildren();
    setNote(this.topNote, '');
    setNote(this.bottomNote, '');
    this.jumpButton.hidden = true;
  }

  showEmpty() {
    this.seq += 1;
    this.openingChatId = null;
    this.clear();
    this.titleEl.textContent = 'No chat open';
    this.history.hidden = true;
    this.emptyEl.hidden = false;
  }

  /** Open a chat (join_chat); resolves with the server's answer, or null. */
  async open(chatId, knownChat) {
    const seq = ++this.seq;
    this.clear();
    this.openingChatId = chatId;
    this.early = [];
    this.titleEl.textContent = knownChat ? chatDisplayName(knownChat, this.me.id) : 'Loading…';
    this.emptyEl.hidden = true;
    this.history.hidden = false;
    this.history.setAttribute('aria-busy', 'true');
    setNote(this.topNote, 'Loading messages…');

    const res = await this.ask('join_chat', { chat_id: chatId });
    if (seq !== this.seq) return null;
    this.openingChatId = null;
    this.history.setAttribute('aria-busy', 'false');
    // Only messages written while the chat loaded are shown; they are rebuilt below.
    this.list.replaceChildren();
    this.pending.clear();
    if (!res.ok) {
      setNote(this.topNote, res.offline ? 'You are offline. The chat opens when the connection is back.' : res.error);
      return null;
    }

    const chat = res.chat || knownChat || { id: chatId, kind: 'channel', name: '' };
    const messages = Array.isArray(res.messages) ? [...res.messages].sort(byId) : [];
    this.chatId = chatId;
    this.chat = chat;
    this.titleEl.textContent = chatDisplayName(chat, this.me.id);
    this.hasMoreBefore = Boolean(res.has_more_before);
    this.hasMoreAfter = Boolean(res.has_more_after);
    const firstUnread = Number.isInteger(res.first_unread_id) ? res.first_unread_id : null;
    let lastReadId = messages.length ? messages[messages.length - 1].id : 0;
    if (Number.isInteger(chat.last_read_id)) lastReadId = chat.last_read_id;
    else if (firstUnread !== null) lastReadId = firstUnread - 1;
    this.reading.reset(chatId, lastReadId);

    const fragment = document.createDocumentFragment();
    let divider = null;
    for (const message of messages) {
      if (this.byId.has(message.id)) continue;
      if (firstUnread !== null && !divider && message.id >= firstUnread) {
        divider = h(
          'li',
          { className: 'unread-divider', role: 'separator' },
          h('span', { text: 'New messages' }),
        );
        fragment.append(divider);
      }
      fragment.append(this.buildStored(message));
    }
    for (const entry of this.outbox.forChat(chatId)) fragment.append(this.buildPending(entry));
    this.list.append(fragment);
    for (const node of this.list.children) this.regroup(node);
    this.updateBounds(messages);
    this.updateTopNote();

    const early = this.early;
    this.early = [];
    for (const message of early) this.receive(message);

    if (divider) this.history.scrollTop = Math.max(0, divider.offsetTop - 8);
    else this.scrollToBottom();
    this.rearm();
    return res;
  }

  /** The connection dropped: what shows may fall behind until catchUp(). */
  markStale() {
    this.synced = false;
  }

  /** After a reconnect: fetch what came after the newest message shown. */
  async catchUp() {
    if (!this.chatId) return null;
    if (this.newestId === null) return this.open(this.chatId, this.chat);
    const seq = this.seq;
    const chatId = this.chatId;
    const res = await this.ask('join_chat', { chat_id: chatId, after_id: this.newestId });
    if (seq !== this.seq) return null;
    if (!res.ok) {
      if (!res.offline) this.notify(res.error);
      return null;
    }
    const atBottom = this.isAtBottom();
    this.synced = true;
    this.reading.resend();
    this.addNewer(res.messages);
    this.hasMoreAfter = Boolean(res.has_more_after);
    if (atBottom) this.scrollToBottom();
    this.rearm();
    return res;
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
    const atBottom = this.isAtBottom();
    if (message.sender_id === this.me.id && this.pending.has(message.client_id)) {
      this.confirm(message.client_id, message);
      return;
    }
    // With a gap below what is shown, a live message would land out of place:
    // it arrives with the next page when the reader scrolls down.
    if (this.hasMoreAfter) {
      this.updateJumpButton();
      return;
    }
    this.insertStored(message);
    if (this.synced) this.newestId = Math.max(this.newestId ?? 0, message.id);
    if (this.oldestId === null) this.oldestId = message.id;
    this.updateTopNote();
    if (atBottom) this.scrollToBottom();
    else this.updateJumpButton();
  }

  /** The user's own upload was stored: show it (once) and bring it into view. */
  showOwn(message) {
    if (!message) return;
    this.receive(message);
    if (message.chat_id === this.chatId && !this.hasMoreAfter) this.scrollToBottom();
  }

  /** True when a new message in the open chat will be seen without scrolling. */
  isFollowingLive() {
    return document.visibilityState === 'visible'
      && this.isShown()
      && !this.hasMoreAfter
      && this.isAtBottom();
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
      body,
      created_at: Date.now(),
      client_id: newClientId(),
      attachment: null,
    };
    const entry = { message, state: WAITING, error: '' };
    const el = this.buildPending(entry);
    this.list.append(el);
    this.regroup(el);
    this.updateTopNote();
    this.scrollToBottom();
    this.outbox.add(message);
    return true;
  }

  /** The outbox moved an entry on (waiting, sending, failed). */
  outboxChanged(entry) {
    const shown = entry.message.chat_id === this.shownChatId();
    const el = shown ? this.pending.get(entry.message.client_id) : null;
    if (el) this.renderStatus(el, entry);
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

  // Rendering

  buildMessage(message, { pending = false } = {}) {
    const own = message.sender_id === this.me.id;
    const classes = ['message'];
    if (own) classes.push('own');
    if (pending) classes.push('pending');
    const dataset = {
      senderId: String(message.sender_id),
      createdAt: String(message.created_at),
    };
    if (Number.isInteger(message.id)) dataset.id = String(message.id);
    if (message.client_id) dataset.clientId = String(message.client_id);
    const attachment = message.attachment && typeof message.attachment === 'object'
      ? message.attachment : null;
    if (attachment) classes.push('has-attachment');
    // With an attachment the body is its caption, shown under it when there is one.
    return h(
      'li',
      { className: classes.join(' '), dataset },
      h(
        'p',
        { className: 'message-meta' },
        h('span', { className: 'sender', text: message.sender_name || 'Unknown' }),
        ' ',
        timeElement(message.created_at, undefined, 'message-time'),
      ),
      attachment ? buildAttachment(attachment, this.viewer) : null,
      !attachment || message.body ? h('p', { className: 'message-body', text: message.body || '' }) : null,
    );
  }

  /** The element of a message still in the outbox. */
  buildPending(entry) {
    const el = this.buildMessage(entry.message, { pending: true });
    this.pending.set(entry.message.client_id, el);
    this.renderStatus(el, entry, { scroll: false });
    return el;
  }

  buildStored(message) {
    const el = this.buildMessage(message);
    this.byId.set(message.id, el);
    this.reading.watch(el, message);
    return el;
  }

  /** Insert a stored message in id order; pending and failed sends stay at the bottom. */
  insertStored(message) {
    const el = this.buildStored(message);
    this.place(el, message.id);
    return el;
  }

  place(el, id) {
    let ref = null;
    for (let node = this.list.lastElementChild; node; node = node.previousElementSibling) {
      if (node !== el && isStored(node) && Number(node.dataset.id) < id) break;
      if (node !== el) ref = node;
    }
    this.list.insertBefore(el, ref);
    this.regroup(el);
    this.regroup(el.nextElementSibling);
  }

  isInPlace(el, id) {
    let prev = el.previousElementSibling;
    while (prev && !isStored(prev)) prev = prev.previousElementSibling;
    let next = el.nextElementSibling;
    while (next && !isStored(next)) next = next.nextElementSibling;
    return (!prev || Number(prev.dataset.id) < id) && (!next || Number(next.dataset.id) > id);
  }

  addNewer(messages) {
    if (!Array.isArray(messages)) return;
    for (const message of [...messages].sort(byId)) {
      if (!Number.isInteger(message.id)) continue;
      this.newestId = Math.max(this.newestId ?? 0, message.id);
      if (this.oldestId === null) this.oldestId = message.id;
      if (this.byId.has(message.id)) continue;
      if (message.sender_id === this.me.id && this.pending.has(message.client_id)) {
        this.confirm(message.client_id, message);
      } else {
        this.insertStored(message);
      }
    }
    this.updateTopNote();
  }

  /** A pending send was stored: the pending element becomes the stored message. */
  confirm(clientId, message) {
    const el = this.pending.get(clientId);
    this.pending.delete(clientId);
    this.outbox.settle(clientId);
    if (!el) return;
    const next = el.nextElementSibling;
    if (this.byId.has(message.id)) {
      el.remove();
      this.regroup(next);
      return;
    }
    // Reuse the node the reader (and a screen reader) already has instead of adding a copy.
    const fresh = this.buildMessage(message);
    el.className = fresh.className;
    el.dataset.id = String(message.id);
    el.dataset.createdAt = String(message.created_at);
    el.replaceChildren(...fresh.childNodes);
    this.byId.set(message.id, el);
    this.reading.watch(el, message);
    if (this.isInPlace(el, message.id)) {
      this.regroup(el);
      this.regroup(el.nextElementSibling);
    } else {
      el.remove();
      this.regroup(next);
      this.place(el, message.id);
    }
    if (!this.hasMoreAfter && this.synced) this.newestId = Math.max(this.newestId ?? 0, message.id);
    if (this.oldestId === null) this.oldestId = message.id;
    this.updateTopNote();
  }

  /** Show where a message of the outbox stands: pending (waiting or sending) or failed. */
  renderStatus(el, entry, { scroll = true } = {}) {
    const atBottom = scroll && this.isAtBottom();
    const failed = entry.state === FAILED;
    el.classList.toggle('pending', !failed);
    el.classList.toggle('failed', failed);
    let status = el.querySelector('.message-status');
    if (!status) {
      status = h('p', { className: 'message-status' });
      el.append(status);
    }
    const hadFocus = status.contains(document.activeElement);
    if (!failed) {
      const waiting = entry.state !== SENDING && this.outbox.isHeld();
      status.replaceChildren(h('span', {
        className: waiting ? 'status-waiting' : 'status-sending',
        text: waiting ? 'Waiting for the connection…' : 'Sending…',
      }));
    } else {
      const retry = h('button', { type: 'button', className: 'button button-small retry', text: 'Retry' });
      retry.addEventListener('click', () => this.outbox.retry(el.dataset.clientId));
      const text = entry.error ? `Not sent: ${entry.error}` : 'Not sent —';
      status.replaceChildren(h('span', { text }), ' ', retry);
    }
    // The Retry button the user pressed is gone; keep the keyboard in the history.
    if (hadFocus) this.history.focus({ preventScroll: true });
    this.regroup(el);
    this.regroup(el.nextElementSibling);
    if (atBottom) this.scrollToBottom();
  }

  /** Hide the name line of a message that follows one from the same sender. */
  regroup(el) {
    if (!isMessage(el)) return;
    const prev = el.previousElementSibling;
    const gap = Number(el.dataset.createdAt) - Number(prev && prev.dataset.createdAt);
    const continued = isMessage(prev)
      && !prev.classList.contains('failed')
      && !el.classList.contains('failed')
      && prev.dataset.senderId === el.dataset.senderId
      && gap >= 0 && gap < GROUP_WINDOW_MS;
    el.classList.toggle('continued', continued);
  }

  updateBounds(messages) {
    for (const message of messages) {
      if (!Number.isInteger(message.id)) continue;
      this.oldestId = this.oldestId === null ? message.id : Math.min(this.oldestId, message.id);
      this.newestId = this.newestId === null ? message.id : Math.max(this.newestId, message.id);
    }
  }

  updateTopNote() {
    if (this.loadingBefore) setNote(this.topNote, 'Loading earlier messages…');
    else if (this.byId.size === 0 && this.pending.size === 0) setNote(this.topNote, 'No messages yet. Write the first one.');
    else if (!this.hasMoreBefore) setNote(this.topNote, 'This is the beginning of the chat.');
    else setNote(this.topNote, '');
  }

  // Scrolling and paging

  isAtBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.history;
    return scrollHeight - scrollTop - clientHeight <= AT_BOTTOM_SLACK_PX;
  }

  scrollToBottom() {
    this.history.scrollTop = this.history.scrollHeight;
    this.updateJumpButton();
  }

  updateJumpButton() {
    const { scrollHeight, scrollTop, clientHeight } = this.history;
    const far = scrollHeight - scrollTop - clientHeight > clientHeight / 2;
    this.jumpButton.hidden = !this.chatId || !(far || (this.hasMoreAfter && !this.isAtBottom()));
  }

  /** Observe the sentinels afresh: observe() always reports the current state once. */
  rearm() {
    if (!this.chatId) return;
    for (const sentinel of [this.topSentinel, this.bottomSentinel]) {
      this.pageObserver.unobserve(sentinel);
      this.pageObserver.observe(sentinel);
    }
  }

  async loadOlder() {
    if (!this.chatId || !this.hasMoreBefore || this.loadingBefore || this.oldestId === null) return;
    const seq = this.seq;
    this.loadingBefore = true;
    this.updateTopNote();
    const res = await this.ask('message_history_is_scrolled_to_the_top', {
      chat_id: this.chatId,
      before_id: this.oldestId,
    });
    if (seq !== this.seq) return;
    this.loadingBefore = false;
    if (!res.ok) {
      this.updateTopNote();
      this.notify(res.error);
      return;
    }
    const messages = Array.isArray(res.messages) ? [...res.messages].sort(byId) : [];
    this.prependOlder(messages);
    this.hasMoreBefore = Boolean(res.has_more_before) && messages.length > 0;
    this.updateTopNote();
    this.rearm();
  }

  prependOlder(messages) {
    const fragment = document.createDocumentFragment();
    const added = [];
    for (const message of messages) {
      if (!Number.isInteger(message.id) || this.byId.has(message.id)) continue;
      const el = this.buildStored(message);
      fragment.append(el);
      added.push(el);
    }
    this.updateBounds(messages);
    if (!added.length) return;
    const oldFirst = this.list.firstElementChild;
    const heightBefore = this.history.scrollHeight;
    const topBefore = this.history.scrollTop;
    this.list.insertBefore(fragment, oldFirst);
    for (const el of added) this.regroup(el);
    this.regroup(oldFirst);
    this.history.scrollTop = topBefore + (this.history.scrollHeight - heightBefore);
  }

  async loadNewer() {
    if (!this.chatId || !this.hasMoreAfter || this.loadingAfter || this.newestId === null) return;
    const seq = this.seq;
    this.loadingAfter = true;
    setNote(this.bottomNote, 'Loading newer messages…');
    const res = await this.ask('message_history_is_scrolled_to_the_bottom', {
      chat_id: this.chatId,
      after_id: this.newestId,
    });
    if (seq !== this.seq) return;
    this.loadingAfter = false;
    setNote(this.bottomNote, '');
    if (!res.ok) {
      this.notify(res.error);
      return;
    }
    const messages = Array.isArray(res.messages) ? res.messages : [];
    this.addNewer(messages);
    this.hasMoreAfter = Boolean(res.has_more_after) && messages.length > 0;
    this.updateJumpButton();
    this.rearm();
  }
}
