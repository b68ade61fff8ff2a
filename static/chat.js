// The chat client: connects to the server over Socket.IO and wires the chat list, the
// open conversation, the composer, file uploads, notifications, the phone's panels and the
// connection status together.

import { onOpenChat } from './js/app_shell.js';
import { ImageViewer } from './js/attachments.js';
import { ChatList } from './js/chatlist.js';
import { MembersPanel } from './js/members.js';
import { Composer } from './js/composer.js';
import { Conversation } from './js/conversation.js';
import { chatDisplayName, isNarrow, setNote } from './js/dom.js';
import { Drafts, forgetDrafts } from './js/drafts.js';
import { ActivityElsewhere } from './js/elsewhere.js';
import { MentionCompleter } from './js/mention_complete.js';
import { request } from './js/net.js';
import { Notifier } from './js/notifications.js';
import { Outbox } from './js/outbox.js';
import { MessageSearch } from './js/search.js';
import { followVisualViewport, Panels } from './js/panels.js';
import { ConnectionStatus } from './js/status.js';
import { Uploader } from './js/uploads.js';

const root = document.getElementById('chat-app');
const me = {
  id: Number(root.dataset.userId),
  username: root.dataset.username || '',
  displayName: root.dataset.displayName || root.dataset.username || '',
  // An admin may delete anyone's message (the server checks it again).
  isAdmin: root.dataset.role === 'admin',
};
// The server's limits (MAX_MESSAGE_LENGTH, MAX_UPLOAD_MB, the channel name's), from the page.
const maxMessageLength = Number(root.dataset.maxMessageLength);
const maxUploadBytes = Number(root.dataset.maxUploadBytes);
const maxChannelNameLength = Number(root.dataset.maxChannelNameLength);
const requestedChatId = Number(root.dataset.openChatId) || null;
const csrfMeta = document.querySelector('meta[name="csrf-token"]');

// The server names the transports (SOCKETIO_TRANSPORTS): WebSocket first, falling back to
// long-polling when it cannot connect; "polling" alone never tries a WebSocket at all.
const transports = (root.dataset.transports || '')
  .split(',')
  .map((name) => name.trim())
  .filter((name) => name === 'websocket' || name === 'polling');
const pollingOnly = transports.length > 0 && transports.every((name) => name === 'polling');
let socket;
if (pollingOnly) socket = io({ transports: ['polling'], upgrade: false });
else if (transports.length) socket = io({ transports, tryAllTransports: true });
else socket = io();

// The transport in use, for whoever checks the page (and tests): "websocket" or "polling".
function noteTransport() {
  const { engine } = socket.io;
  root.dataset.transport = engine && engine.transport ? engine.transport.name : '';
}
socket.io.on('open', () => {
  noteTransport();
  socket.io.engine.on('upgrade', noteTransport);
});
const ask = (event, payload, timeoutMs) => request(socket, event, payload, timeoutMs);
const status = new ConnectionStatus(document.getElementById('status'));
if (!navigator.onLine) status.offline();

const outbox = new Outbox({
  ask,
  isConnected: () => socket.connected,
  onChange: (entry) => conversation.outboxChanged(entry),
  onStored: (entry, message) => {
    conversation.outboxStored(entry, message);
    // The sending tab gets its message only in this answer: it moves its own chat up.
    chatList.noteMessage(message.chat_id, message, { countUnread: false });
  },
});

const composer = new Composer({
  root,
  maxLength: maxMessageLength,
  onSend: (body) => conversation.send(body),
  onTyping: () => {
    if (conversation.chatId && socket.connected) ask('typing', { chat_id: conversation.chatId });
  },
  drafts: new Drafts(me.id),
});

// "@" completes the open chat's members.
new MentionCompleter({ root, me, ask, chatId: () => conversation.shownChatId() });

const conversation = new Conversation({
  root,
  me,
  ask,
  outbox,
  viewer: new ImageViewer(document.getElementById('image-viewer')),
  notify: (text) => composer.showError(text),
  onRead: (chatId, unreadCount, lastReadId, mentionCount) => {
    chatList.setUnread(chatId, unreadCount, lastReadId, mentionCount);
  },
  openAt: (chatId, messageId) => openChatAt(chatId, messageId),
  onEdited: (message) => chatList.noteEdit(message.chat_id, message),
});

const uploadStatus = root.querySelector('#upload-status');
const uploader = new Uploader({
  root,
  maxBytes: maxUploadBytes,
  csrfToken: csrfMeta ? csrfMeta.getAttribute('content') : '',
  currentChatId: () => conversation.shownChatId(),
  chatName: (chatId) => chatDisplayName(chatList.get(chatId), me.id),
  onUploaded: (message) => conversation.showOwn(message),
  notify: (text) => composer.showError(text),
  announce: (text) => {
    // Emptied first, so the same sentence twice is still read out twice.
    uploadStatus.textContent = '';
    setTimeout(() => { uploadStatus.textContent = text; }, 50);
  },
  caption: () => composer.caption(),
  onCaptionSent: (chatId, caption) => composer.captionSent(chatId, caption),
});

const chatList = new ChatList({
  root,
  me,
  onOpen: (chatId) => openChat(chatId, { byUser: true }),
  onJoin: joinChannel,
  onChange: () => countUnreadElsewhere(),
});

const notifier = new Notifier({
  root,
  me,
  onOpen: (chatId) => openChat(chatId, { byUser: true }),
});
// A notification shown by the service worker was clicked.
onOpenChat((chatId) => openChat(chatId, { byUser: true }));

const panels = new Panels({
  root,
  onShowList: () => chatList.focusActive(),
  onShowChat: (chatId) => openChat(chatId, { byUser: false }),
});
followVisualViewport();

const elsewhere = new ActivityElsewhere({
  root,
  me,
  onOpen: (chatId) => openChat(chatId, { byUser: true }),
  isConversationShown: () => panels.conversationShown,
});

/** The Back button's count: unread messages of every chat but the one shown. */
function countUnreadElsewhere() {
  const shown = chatList.get(conversation.shownChatId());
  elsewhere.setCount(chatList.totalUnread() - (shown ? Number(shown.unread_count) || 0 : 0));
}

// A search result opens its chat at that message.
new MessageSearch({ ask, me, onOpen: openChatAt });

let everConnected = false;
let loggedOut = false;
// The chat the user last asked for; reopened after a reconnect if opening it failed.
let wantedChatId = null;

function enableComposer(on) {
  composer.enable(on);
  uploader.enable(on);
}

// Opening chats

/**
 * Open a chat (`byUser`: the user asked for it, so it comes into view and takes the focus);
 * with `aroundId`, at that message (see openChatAt). Resolves with true once it shows.
 */
async function openChat(chatId, { byUser = false, focusComposer = false, aroundId = null } = {}) {
  wantedChatId = chatId;
  if (byUser) panels.showConversation(chatId);
  elsewhere.hide();
  // What was written stays with its chat: never sent to the chat opened now.
  composer.setChat(chatId);
  const isOpen = chatId === conversation.chatId && conversation.openingChatId === null;
  if (isOpen && (aroundId === null || conversation.showMessage(aroundId))) {
    if (byUser && aroundId === null) focusAfterOpen();
    return true;
  }
  chatList.setActive(chatId);
  composer.showError('');
  // The text box stays usable while the chat loads, so no keystroke is lost.
  const res = await conversation.open(chatId, chatList.get(chatId), { aroundId });
  uploader.setOpenChat();
  if (!res) {
    if (!conversation.openingChatId) enableComposer(false);
    return false;
  }
  afterOpen(chatId, res);
  // Opened at a message, the focus is on that message.
  if (byUser && aroundId === null) focusAfterOpen();
  else if (focusComposer && !isNarrow() && nothingFocused()) composer.focus();
  return true;
}

/**
 * Open the chat `chatId` at the message `messageId`, scrolled to it and highlighted: the
 * page around it is asked for (join_chat around_id) unless it is shown already, and
 * paging goes on both ways from there. Resolves with true once the chat shows (a message
 * no longer there: the chat opens as usual, with a note).
 */
export function openChatAt(chatId, messageId) {
  return openChat(chatId, { byUser: true, aroundId: messageId });
}

/** True when the keyboard is nowhere in particular (the page just loaded). */
function nothingFocused() {
  const active = document.activeElement;
  return !active || active === document.body || active === document.documentElement;
}

const members = new MembersPanel({ root, ask, me, onLeft: (chatId) => chatLeft(chatId) });

/** This user left a channel (here or in another tab): it leaves the list and the screen. */
function chatLeft(chatId) {
  if (conversation.chatId === chatId || wantedChatId === chatId) {
    wantedChatId = null;
    conversation.showEmpty();
    enableComposer(false);
    members.setChat(null);
    panels.showList();
  }
  syncChats();
}

function afterOpen(chatId, res) {
  if (res.chat) chatList.upsert(res.chat);
  members.setChat(chatList.get(chatId));
  if (Number.isInteger(res.unread_count)) chatList.setUnread(chatId, res.unread_count);
  enableComposer(true);
  panels.noteOpenChat(chatId);
  notifier.setOpenChat(chatList.get(chatId));
}

function focusAfterOpen() {
  // On a phone, focusing the text box would pop the keyboard over the history.
  if (isNarrow()) root.querySelector('#chat-title').focus();
  else composer.focus();
}

let syncSeq = 0;
let syncRunning = null; // the list_chats request in flight
let syncNext = null; // the one after it, shared by every caller meanwhile

/**
 * Bring the chat list up to date; resolves once a list_chats asked after this call has
 * answered (true when it succeeded). Calls while one is in flight share the next request,
 * so thirty new direct chats arriving together cost two requests, not thirty.
 */
function syncChats() {
  if (!syncRunning) {
    syncRunning = askForChats().finally(() => { syncRunning = null; });
    return syncRunning;
  }
  if (!syncNext) {
    syncNext = syncRunning.then(() => {
      syncNext = null;
      return syncChats();
    });
  }
  return syncNext;
}

async function askForChats() {
  const mine = ++syncSeq;
  const res = await ask('list_chats', {});
  // Only the newest answer counts; an older one could undo a change made since.
  if (mine !== syncSeq) return res.ok;
  if (!res.ok && res.code === 'rate_limited' && Number.isFinite(res.retry_after)) {
    // Over the budget (many tabs at once): the list catches up when it may.
    setTimeout(() => syncChats(), res.retry_after * 1000);
    return false;
  }
  if (!res.ok) {
    chatList.showError(res.error);
    return false;
  }
  chatList.showError('');
  status.online(res.online_count);
  chatList.setPresenceKnown(true);
  chatList.setAll(Array.isArray(res.chats) ? res.chats : [], Array.isArray(res.channels) ? res.channels : []);
  return true;
}

// Channels

const channelForm = root.querySelector('#new-channel-form');
const channelInput = root.querySelector('#new-channel-name');
const channelError = root.querySelector('#new-channel-error');
const privateToggle = root.querySelector('#new-channel-private');
privateToggle.addEventListener('click', () => {
  const on = privateToggle.getAttribute('aria-pressed') !== 'true';
  privateToggle.setAttribute('aria-pressed', String(on));
});

channelForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = channelInput.value.trim();
  if (!name) {
    setNote(channelError, 'Give the channel a name.');
    channelInput.focus();
    return;
  }
  if (Array.from(name).length > maxChannelNameLength) {
    setNote(channelError, `A channel name has at most ${maxChannelNameLength} characters.`);
    return;
  }
  const button = channelForm.querySelector('button[type="submit"]');
  button.disabled = true;
  const isPrivate = privateToggle.getAttribute('aria-pressed') === 'true';
  const res = await ask('create_channel', { name, private: isPrivate });
  button.disabled = false;
  if (!res.ok || !res.chat) {
    setNote(channelError, res.error || 'The channel could not be created.');
    channelInput.setAttribute('aria-invalid', 'true');
    return;
  }
  setNote(channelError, '');
  channelInput.removeAttribute('aria-invalid');
  channelInput.value = '';
  privateToggle.setAttribute('aria-pressed', 'false');
  chatList.upsert(res.chat, { toTop: true });
  openChat(res.chat.id, { byUser: true });
});

async function joinChannel(chatId, button) {
  button.disabled = true;
  chatList.showJoinError('');
  const res = await ask('join_channel', { chat_id: chatId });
  button.disabled = false;
  if (!res.ok || !res.chat) {
    chatList.showJoinError(res.error || 'Could not join the channel.');
    return;
  }
  chatList.upsert(res.chat, { toTop: true });
  openChat(res.chat.id, { byUser: true });
}

// Connection

/** The login session ended (here or in another tab): nothing of the chats stays on screen. */
function showLoggedOut() {
  loggedOut = true;
  forgetDrafts();
  status.refused();
  if (root.hidden) return;
  conversation.showEmpty();
  chatList.setAll([], []);
  root.hidden = true;
  const note = document.getElementById('signed-out');
  note.hidden = false;
  note.querySelector('h2').focus();
}

function showDisconnected() {
  chatList.setPresenceKnown(false);
  if (loggedOut) status.refused();
  else if (navigator.onLine) status.reconnecting();
  else status.offline();
}

/** Drop the socket and connect again now, instead of after the backoff delay. */
function reconnectNow() {
  socket.disconnect();
  socket.connect();
}

/**
 * After a reconnect (or a resync from `since`): fetch what the open chat missed, or open
 * the chat that failed to.
 */
async function catchUpOpenChat(since = null) {
  if (conversation.openingChatId !== null) return;
  if (conversation.chatId && conversation.chatId === wantedChatId) {
    const res = await conversation.catchUp(since);
    if (res && conversation.chatId) afterOpen(conversation.chatId, res);
  } else if (wantedChatId) {
    await openChat(wantedChatId, { byUser: false });
  }
}

function openFirstChat() {
  const first = requestedChatId || chatList.firstId();
  if (first) {
    // After logging in (or following a link to a chat), the desktop's keyboard is ready to write.
    openChat(first, { byUser: false, focusComposer: true });
  } else {
    composer.setChat(null);
    conversation.showEmpty();
    enableComposer(false);
  }
}

socket.on('connect', async () => {
  status.connected();
  const synced = await syncChats();
  if (!socket.connected) return;
  if (!everConnected) {
    if (!synced) return;
    everConnected = true;
    // The user may have picked (or created) a chat while the list loaded: it stays open.
    if (wantedChatId === null) openFirstChat();
  } else if (synced) {
    await catchUpOpenChat();
  }
  // Only now, so what was written while away goes after what the catch-up brought.
  if (!socket.connected) return;
  outbox.resume();
  uploader.resume();
});

// The server lost the queue between its workers for a while (a Redis restart): messages
// from other workers may have missed this page although its socket stayed up. Catch up as
// after a reconnect, from before the outage; every page of the worker hears it at once, so
// each waits a moment of its own first.
const RESYNC_SPREAD_MS = 1000;
let resyncSince = null;
let resyncTimer = null;

async function resync() {
  resyncTimer = null;
  const since = resyncSince;
  resyncSince = null;
  if (!socket.connected || !everConnected) return;
  const synced = await syncChats();
  if (synced && socket.connected) await catchUpOpenChat(since);
  root.dataset.resyncs = String(Number(root.dataset.resyncs || 0) + 1);
}

socket.on('resync', (data) => {
  const since = data && Number.isInteger(data.since) ? data.since : 0; // 0: all shown
  resyncSince = resyncSince === null ? since : Math.min(resyncSince, since);
  if (resyncTimer === null) resyncTimer = setTimeout(resync, Math.random() * RESYNC_SPREAD_MS);
});

socket.on('disconnect', (reason) => {
  outbox.pause();
  conversation.markStale();
  showDisconnected();
  // The server closed this socket; Socket.IO leaves reconnecting to us then.
  if (reason === 'io server disconnect' && !loggedOut) socket.connect();
});

// This session logged out (in another tab): the server closes the socket next.
socket.on('logged_out', showLoggedOut);

socket.on('connect_error', () => {
  // When the server refuses the connection (no login), the client stops retrying.
  if (socket.active) showDisconnected();
  else showLoggedOut();
});

socket.io.on('reconnect_attempt', showDisconnected);
socket.io.on('reconnect_failed', () => status.offline());

// The browser knows about a lost network before an idle socket does (an open WebSocket
// can look alive for a minute): stop trusting it, and try again as soon as it is back.
window.addEventListener('offline', () => {
  if (loggedOut) return;
  chatList.setPresenceKnown(false);
  status.offline();
  reconnectNow();
});

window.addEventListener('online', () => {
  if (socket.connected || loggedOut) return;
  status.reconnecting();
  reconnectNow();
});

// Back to a page kept in the back-forward cache (after logging out, say): load it afresh,
// so the server decides again what it may show.
window.addEventListener('pageshow', (event) => {
  if (event.persisted) window.location.reload();
});

window.addEventListener('beforeunload', (event) => {
  if (outbox.size > 0 || uploader.isBusy()) event.preventDefault();
});

// Server events

// A message reaches each socket once: as the current chat's where it is open (the
// conversation shows it), as another chat's elsewhere; both move the chat up in the list.
function messageArrived(data) {
  if (!data || !data.message) return;
  const chatId = Number.isInteger(data.chat_id) ? data.chat_id : data.message.chat_id;
  conversation.receive(data.message);
  if (!chatList.has(chatId)) {
    // A chat new to this page: its first message arrives with the fresh list.
    syncChats().then(() => notifier.consider(chatList.get(chatId), data.message, conversation.shownChatId()));
    return;
  }
  const isOpen = chatId === conversation.chatId;
  chatList.noteMessage(chatId, data.message, {
    countUnread: !isOpen || !conversation.isFollowingLive(),
  });
  notifier.consider(chatList.get(chatId), data.message, conversation.shownChatId());
  if (chatId !== conversation.shownChatId()) elsewhere.show(chatList.get(chatId), data.message);
}
socket.on('message_received_from_current_chat', messageArrived);
socket.on('message_received_from_another_chat', messageArrived);

// A message edited, deleted or reacted to: the open chat and the chat list follow.
socket.on('message_updated', (data) => {
  if (!data || !data.message) return;
  conversation.updateMessage(data.message);
  chatList.noteEdit(data.chat_id, data.message);
});
socket.on('message_removed', (data) => {
  if (!data || !Number.isInteger(data.message_id)) return;
  conversation.removeMessage(data.chat_id, data.message_id);
  chatList.noteRemoval(
    data.chat_id,
    data.message_id,
    data.sender_id,
    data.last_message || null,
    Array.isArray(data.mentions) ? data.mentions : [],
  );
});
socket.on('reactions_updated', (data) => {
  if (data) conversation.setReactions(data.chat_id, data.message_id, data.reactions);
});

socket.on('new_user_sent_message', () => syncChats());
socket.on('chat_added', () => syncChats());
socket.on('chat_left', (data) => {
  if (data && Number.isInteger(data.chat_id)) chatLeft(data.chat_id);
});
socket.on('channel_updated', (data) => {
  if (!data || !data.chat || !chatList.has(data.chat.id)) return;
  chatList.upsert(data.chat);
  members.updated(data.chat);
  if (conversation.chatId === data.chat.id) conversation.titleEl.textContent = chatDisplayName(chatList.get(data.chat.id), me.id);
});

socket.on('channel_created', (data) => {
  if (data && data.chat) chatList.addJoinable(data.chat);
});

socket.on('new_message_count_updated', (data) => {
  if (!data || !Number.isInteger(data.chat_id)) return;
  chatList.setUnread(data.chat_id, data.unread_count, data.last_read_id, data.mention_count);
  conversation.readElsewhere(data.chat_id, data.last_read_id);
});

socket.on('user_typing', (data) => {
  if (data) conversation.showTyping(data);
});

socket.on('online_users_updated', (data) => {
  if (data) status.online(data.count);
});

socket.on('presence_updated', (data) => {
  if (data) chatList.setPresence(data.user_id, data.online === true);
});
