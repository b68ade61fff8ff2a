// How one message looks: sender, time in the reader's locale, body (message_body.js),
// attachment, and for a message still on its way its state
// (sending, waiting for the connection, or not sent with Retry).

import { buildAttachment } from './attachments.js';
import { formatClockTime, h, timeElement } from './dom.js';
import { buildAvatar } from './members.js';
import { buildActionsButton, buildEditedMark } from './message_actions.js';
import { renderBody } from './message_body.js';
import { FAILED, SENDING } from './outbox.js';
import { buildReactions } from './reactions.js';
import { buildReplyQuote } from './reply_bar.js';

/** The <li> of `message` as `me` ({id}) sees it; `viewer` opens pictures in full. */
export function buildMessage(message, { me, viewer, pending = false }) {
  const own = message.sender_id === me.id;
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
  const showBody = !attachment || message.body;
  const li = h(
    'li',
    { className: classes.join(' '), dataset },
    h(
      'p',
      { className: 'message-meta' },
      buildAvatar({ name: message.sender_display_name || message.sender_name, url: message.sender_avatar_url }),
      h('span', { className: 'sender', dir: 'auto', text: message.sender_display_name || message.sender_name || 'Unknown' }),
      ' ',
      timeElement(message.created_at, formatClockTime, 'message-time'),
    ),
    buildReplyQuote(message),
    attachment ? buildAttachment(attachment, viewer) : null,
    ...(showBody ? renderBody(message, me) : []),
    // Around the body, what the message became after it was sent (message_actions.js).
    buildEditedMark(message),
    buildReactions(message, me),
  );
  // First in the message, so Tab reaches a message's actions before what it holds.
  const actions = buildActionsButton(message);
  if (actions) li.prepend(actions);
  // The message as last received: its actions (reply, edit) and live changes start from it.
  li.message = message;
  return li;
}

/**
 * Show where a message of the outbox stands on its element: pending (waiting or sending)
 * or failed with a Retry button. `held`: the outbox waits for the connection;
 * `onRetry()`: the user pressed Retry.
 */
export function renderStatus(el, entry, { held, onRetry }) {
  const failed = entry.state === FAILED;
  el.classList.toggle('pending', !failed);
  el.classList.toggle('failed', failed);
  let status = el.querySelector('.message-status');
  if (!status) {
    status = h('p', { className: 'message-status' });
    el.append(status);
  }
  if (!failed) {
    const waiting = entry.state !== SENDING && held;
    const again = entry.state !== SENDING && !held && entry.retrying;
    let text = 'Sending…';
    if (waiting) text = 'Waiting for the connection…';
    else if (again) text = entry.retrying;
    status.replaceChildren(h('span', {
      className: waiting || again ? 'status-waiting' : 'status-sending',
      text,
    }));
    return;
  }
  const retry = h('button', { type: 'button', className: 'button button-small retry', text: 'Retry' });
  retry.addEventListener('click', onRetry);
  const text = entry.error ? `Not sent: ${entry.error}` : 'Not sent —';
  status.replaceChildren(h('span', { text }), ' ', retry);
}
