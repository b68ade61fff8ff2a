// The chat client: connects to the server over Socket.IO and wires the chat list,
// the open conversation and the composer together.

import { ChatList } from './js/chatlist.js';
import { Composer } from './js/composer.js';
import { Conversation } from './js/conversation.js';
import { isNarrow, setNote } from './js/dom.js';
import { request } from './js/net.js';
import { ConnectionStatus } from './js/status.js';

const root = document.getElementById('chat-app');
const me = { id: Number(root.dataset.userId), username: root.dataset.username || '' };
const maxMessageLength = Number(root.dataset.maxMessageLength) || 4000;
const requestedChatId = Number(root.dataset.openChatId) || null;

// The server may ask for WebSocket first; fall back to long-polling when it cannot connect.
const transports = (root.dataset.transports || '')
  .split(',')
  .map((name) => name.trim())
  .filter((name) => name === 'websocket' || name === 'polling');
const socket = transports.length ? io({ transports, tryAllTransports: true }) : io();
const ask = (event, payload, timeoutMs) => request(socket, event, payload, timeoutMs);
const status = new ConnectionStatus(document.getElementById('status'));

const composer = new Composer({
  root,
  maxLength: maxMessageLength,
  onSend: (body) => (conversation.openingChatId !== null
    ? 'The chat is still loading. Try again in a moment.'
    : conversation.send(body)),
  onTyping: () => {
    if (conversation.chatId) ask('typing', { chat_id: conversation.chatId });
  },
});

const conversation = new Conversation({
  root,
  me,
  ask,
  isConnected: () => socket.connected,
  notify: (text) => composer.showError(text),
  onRead: (chatId, unreadCount, lastReadId) => chatList.setUnread(chatId, unreadCount, lastReadId),
});

const chatList = new ChatList({
  root,
  me,
  onOpen: (chatId) => openChat(chatId, { byUser: true }),
  onJoin: joinChannel,
});

let everConnected = false;

// Panels: on a phone one shows at a time.

function showConversationPanel() {
  root.classList.add('show-conversation');
}

function showListPanel() {
  root.classList.remove('show-conversation');
  chatList.focusActive();
}

root.querySelector('#back-button').addEventListener('click', showListPanel);

// Opening chats

async function openChat(chatId, { byUser = false } = {}) {
  if (byUser) showConversationPanel();
  if (chatId === conversation.chatId && conversation.openingChatId === null) {
    if (byUser) focusAfterOpen();
    return;
  }
  chatList.setActive(chatId);
  composer.showError('');
  // The text box stays usable while the chat loads, so no keystroke is lost.
  const res = await conversation.open(chatId, chatList.get(chatId));
  if (!res) {
    if (!conversation.openingChatId) composer.enable(false);
    return;
  }
  afterOpen(chatId, res);
  if (byUser) focusAfterOpen();
}

function afterOpen(chatId, res) {
  if (res.chat) chatList.upsert(res.chat);
  if (Number.isInteger(res.unread_count)) chatList.setUnread(chatId, res.unread_count);
  composer.enable(true);
  history.replaceState(null, '', `/chats?chat=${chatId}`);
}

function focusAfterOpen() {
  // On a phone, focusing the text box would pop the keyboard over the history.
  if (isNarrow()) root.querySelector('#chat-title').focus();
  else composer.focus();
}

let syncSeq = 0;

async function syncChats() {
  const mine = ++syncSeq;
  const res = await ask('list_chats', {});
  // Only the newest answer counts; an older one could undo a change made since.
  if (mine !== syncSeq) return res.ok;
  if (!res.ok) {
    chatList.showError(res.error);
    return false;
  }
  chatList.showError('');
  chatList.setAll(Array.isArray(res.chats) ? res.chats : [], Array.isArray(res.channels) ? res.channels : []);
  return true;
}

// Channels

const channelForm = root.querySelector('#new-channel-form');
const channelInput = root.querySelector('#new-channel-name');
const channelError = root.querySelector('#new-channel-error');

channelForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = channelInput.value.trim();
  if (!name) {
    setNote(channelError, 'Give the channel a name.');
    channelInput.focus();
    return;
  }
  if (Array.from(name).length > 50) {
    setNote(channelError, 'A channel name has at most 50 characters.');
    return;
  }
  const button = channelForm.querySelector('button[type="submit"]');
  button.disabled = true;
  const res = await ask('create_channel', { name });
  button.disabled = false;
  if (!res.ok || !res.chat) {
    setNote(channelError, res.error || 'The channel could not be created.');
    channelInput.setAttribute('aria-invalid', 'true');
    return;
  }
  setNote(channelError, '');
  channelInput.removeAttribute('aria-invalid');
  channelInput.value = '';
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

socket.on('connect', async () => {
  status.connected();
  const synced = await syncChats();
  if (!synced) return;
  if (!everConnected) {
    everConnected = true;
    const first = requestedChatId || chatList.firstId();
    if (first) openChat(first, { byUser: false });
    else {
      conversation.showEmpty();
      composer.enable(false);
    }
    return;
  }
  if (conversation.chatId) {
    const res = await conversation.catchUp();
    if (res && conversation.chatId) afterOpen(conversation.chatId, res);
    conversation.retryFailed();
  }
});

socket.on('disconnect', () => status.disconnected());

socket.on('connect_error', () => {
  // When the server refuses the connection (no login), the client stops retrying.
  status.failed(!socket.active);
});

socket.io.on('reconnect_attempt', () => status.reconnecting());

// Server events

socket.on('message_received_from_current_chat', (data) => {
  if (data && data.message) conversation.receive(data.message);
});

socket.on('message_received_from_another_chat', (data) => {
  if (!data || !data.message) return;
  const chatId = Number.isInteger(data.chat_id) ? data.chat_id : data.message.chat_id;
  if (!chatList.has(chatId)) {
    syncChats();
    return;
  }
  const isOpen = chatId === conversation.chatId;
  chatList.noteMessage(chatId, data.message, {
    countUnread: !isOpen || !conversation.isFollowingLive(),
  });
});

socket.on('new_user_sent_message', () => syncChats());
socket.on('chat_added', () => syncChats());

socket.on('channel_created', (data) => {
  if (data && data.chat) chatList.addJoinable(data.chat);
});

socket.on('new_message_count_updated', (data) => {
  if (!data || !Number.isInteger(data.chat_id)) return;
  chatList.setUnread(data.chat_id, data.unread_count, data.last_read_id);
  conversation.readElsewhere(data.chat_id, data.last_read_id);
});

socket.on('user_typing', (data) => {
  if (data) conversation.showTyping(data);
});

socket.on('online_users_updated', (data) => {
  if (data && Number.isInteger(data.count)) status.online(data.count);
});
