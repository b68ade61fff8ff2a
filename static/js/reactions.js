// Reactions: the row of emoji under a message (each a toggle with its count; who reacted
// shows on hover, and on a long press on a phone), and the emoji a reader picks from.

import { h } from './dom.js';

/** The quick set, offered first. */
export const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢'];

/** The small picker's others. */
export const MORE_REACTIONS = [
  '👏', '🙏', '🙌', '💪', '👀', '🔥', '✅', '❌', '💯', '⭐',
  '😀', '😊', '😍', '🤔', '😅', '😎', '🙃', '😴', '😡', '🤯',
  '🥳', '🤝', '👋', '👌', '☕', '🍕', '🚀', '💡', '⚠️', '❓',
];

const LONG_PRESS_MS = 500;

/** "Ann", "Ann and Ben", "Ann, Ben and Cy". */
export function listNames(names) {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

function reactionList(message) {
  return Array.isArray(message.reactions) ? message.reactions.filter(
    (r) => r && typeof r.emoji === 'string' && Array.isArray(r.user_ids) && r.user_ids.length,
  ) : [];
}

function namesOf(reaction, me) {
  const names = Array.isArray(reaction.user_names) ? reaction.user_names : [];
  return reaction.user_ids.map((id, i) => (id === me.id ? 'you' : String(names[i] || 'someone')));
}

/**
 * The reactions row of `message` as `me` sees it (null when it has none). Each chip is a
 * toggle button carrying its emoji in `data-emoji`; what happens on a press is the caller's
 * (one listener on the message list, see message_actions.js).
 */
export function buildReactions(message, me) {
  const reactions = reactionList(message);
  if (!reactions.length) return null;
  return h(
    'div',
    { className: 'reactions', role: 'group', 'aria-label': 'Reactions' },
    ...reactions.map((reaction) => {
      const mine = reaction.user_ids.includes(me.id);
      const count = reaction.user_ids.length;
      const who = listNames(namesOf(reaction, me));
      return h(
        'button',
        {
          type: 'button',
          className: mine ? 'reaction mine' : 'reaction',
          'aria-pressed': mine ? 'true' : 'false',
          'aria-label': `${reaction.emoji} ${count}: ${who}`,
          title: `${who} reacted with ${reaction.emoji}`,
          dataset: { emoji: reaction.emoji, who },
        },
        h('span', { className: 'reaction-emoji', 'aria-hidden': 'true', text: reaction.emoji }),
        h('span', { className: 'reaction-count', 'aria-hidden': 'true', text: String(count) }),
      );
    }),
  );
}

/**
 * Who reacted, on a long press (a phone has no hover): the names show in a small bubble
 * above the chip until the next touch. `list`: the message list (one listener for all).
 * Returns whether the press that just ended was a long one (its click must not toggle).
 */
export function showWhoOnLongPress(list) {
  let timer = null;
  let bubble = null;
  let longPressed = false;

  const hide = () => {
    if (bubble) bubble.remove();
    bubble = null;
  };
  const show = (chip) => {
    hide();
    bubble = h('span', { className: 'reaction-people', role: 'status', text: chip.title });
    chip.after(bubble);
    longPressed = true;
  };
  list.addEventListener('pointerdown', (event) => {
    hide();
    const chip = event.target.closest && event.target.closest('.reaction');
    longPressed = false;
    if (!chip || event.pointerType === 'mouse') return;
    clearTimeout(timer);
    timer = setTimeout(() => show(chip), LONG_PRESS_MS);
  });
  for (const type of ['pointerup', 'pointercancel', 'pointerleave']) {
    list.addEventListener(type, () => clearTimeout(timer));
  }
  // A phone's own long-press gesture (the context menu) shows the names instead.
  list.addEventListener('contextmenu', (event) => {
    const chip = event.target.closest && event.target.closest('.reaction');
    if (!chip) return;
    event.preventDefault();
    clearTimeout(timer);
    show(chip);
  });
  return () => {
    const was = longPressed;
    longPressed = false;
    return was;
  };
}

/** The picker's buttons: `emojis`, each labelled "React with 👍". */
export function buildEmojiButtons(emojis, className) {
  return emojis.map((emoji) => h('button', {
    type: 'button',
    className,
    'aria-label': `React with ${emoji}`,
    title: `React with ${emoji}`,
    dataset: { emoji },
    text: emoji,
  }));
}
