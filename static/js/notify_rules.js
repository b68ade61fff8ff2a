// Which messages notify, in one place, and the person's notification choices kept in this
// browser (localStorage): the chats whose every message notifies, and the sound.

const CHOSEN_KEY = 'chat.notify.everyMessage';
const SOUND_KEY = 'chat.notify.sound';

function readJson(key, fallback) {
  try {
    const value = JSON.parse(window.localStorage.getItem(key));
    return value === null ? fallback : value;
  } catch {
    return fallback;
  }
}

function writeJson(key, value) {
  try {
    window.localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or refused (private mode): the choice lasts until the page closes.
  }
}

/** The ids of the chats whose every message `userId` wants to hear of. */
function chosenChats(userId) {
  const all = readJson(CHOSEN_KEY, {});
  const ids = all && typeof all === 'object' ? all[userId] : null;
  return new Set(Array.isArray(ids) ? ids.filter(Number.isInteger) : []);
}

export function isChosen(userId, chatId) {
  return chosenChats(userId).has(chatId);
}

/** Notify of every message of `chatId` (on), or only of what concerns `userId` (off). */
export function setChosen(userId, chatId, on) {
  const all = readJson(CHOSEN_KEY, {});
  const store = all && typeof all === 'object' && !Array.isArray(all) ? all : {};
  const ids = chosenChats(userId);
  if (on) ids.add(chatId);
  else ids.delete(chatId);
  store[userId] = [...ids];
  writeJson(CHOSEN_KEY, store);
}

export function soundOn() {
  return readJson(SOUND_KEY, true) !== false;
}

export function setSound(on) {
  writeJson(SOUND_KEY, Boolean(on));
}

/**
 * Whether a message names `me` (the server marks mentions with `mentions: [user ids]`);
 * messages without that field mention nobody.
 */
export function mentionsMe(message, me) {
  return Array.isArray(message.mentions) && message.mentions.includes(me.id);
}

/**
 * The rule: a message from someone else, in a chat that is not on screen (the tab hidden,
 * and not the open chat), that is a direct message, mentions me, or is in a chat whose
 * every message I chose to hear of.
 */
export function shouldNotify(message, { chat, me, openChatId, hidden }) {
  if (!message || !chat || !hidden) return false;
  if (message.sender_id === me.id || chat.id === openChatId) return false;
  return chat.kind === 'direct' || mentionsMe(message, me) || isChosen(me.id, chat.id);
}
