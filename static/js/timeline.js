// The open chat's message list as a timeline: messages in id order (those still being sent
// at the bottom), a separator before each new day ("Today", "Yesterday", a date), the
// "New messages" divider, and consecutive messages of one sender grouped. Every change
// repairs only the neighbourhood it touched, so paging and live messages keep it right.

import { dayKey, formatDay, h } from './dom.js';

const GROUP_WINDOW_MS = 5 * 60 * 1000;
const RELABEL_EVERY_MS = 60 * 1000;

export function isMessage(node) {
  return Boolean(node && node.classList && node.classList.contains('message'));
}

export function isStored(node) {
  return isMessage(node) && Boolean(node.dataset.id);
}

function isDaySeparator(node) {
  return Boolean(node && node.classList && node.classList.contains('day-separator'));
}

function previousMessage(el) {
  let node = el.previousElementSibling;
  while (node && !isMessage(node)) node = node.previousElementSibling;
  return node;
}

function nextMessage(el) {
  let node = el.nextElementSibling;
  while (node && !isMessage(node)) node = node.nextElementSibling;
  return node;
}

function messageDay(el) {
  return dayKey(el.dataset.createdAt);
}

export class Timeline {
  constructor(list) {
    this.list = list;
    this.divider = null;
    this.labelledDay = dayKey(Date.now());
    // A page left open overnight: "Today" becomes "Yesterday".
    setInterval(() => this.relabelIfNewDay(), RELABEL_EVERY_MS);
    document.addEventListener('visibilitychange', () => this.relabelIfNewDay());
  }

  clear() {
    this.list.replaceChildren();
    this.divider = null;
  }

  /** Show `elements` (messages, oldest first), with the unread divider before `firstUnread`. */
  fill(elements, firstUnread = null) {
    const fragment = document.createDocumentFragment();
    let day = null;
    this.divider = null;
    for (const el of elements) {
      const elDay = messageDay(el);
      if (elDay !== day) fragment.append(this.buildSeparator(el));
      if (el === firstUnread) {
        this.divider = h('li', { className: 'unread-divider' }, h('span', { text: 'New messages' }));
        fragment.append(this.divider);
      }
      fragment.append(el);
      day = elDay;
    }
    this.list.replaceChildren(fragment);
    for (const el of elements) this.regroup(el);
  }

  /** Put older messages (oldest first) above everything shown. */
  prepend(elements) {
    if (!elements.length) return;
    const oldFirst = this.list.firstElementChild;
    const fragment = document.createDocumentFragment();
    fragment.append(...elements);
    this.list.insertBefore(fragment, oldFirst);
    for (const el of elements) this.fixDay(el);
    const after = nextMessage(elements[elements.length - 1]);
    for (const el of elements) this.regroup(el);
    if (after) this.settleOne(after);
  }

  /** Insert a stored message in id order; messages still being sent stay below. */
  insertStored(el, id) {
    let ref = null;
    for (let node = this.list.lastElementChild; node; node = node.previousElementSibling) {
      if (node !== el && isStored(node) && Number(node.dataset.id) < id) break;
      if (node !== el) ref = node;
    }
    this.list.insertBefore(el, ref);
    this.settle(el);
  }

  /** Add a message being sent at the very bottom. */
  append(el) {
    this.list.append(el);
    this.settle(el);
  }

  /** True when `el` (stored as `id`) sits between an older and a newer stored message. */
  isInPlace(el, id) {
    let prev = el.previousElementSibling;
    while (prev && !isStored(prev)) prev = prev.previousElementSibling;
    let next = el.nextElementSibling;
    while (next && !isStored(next)) next = next.nextElementSibling;
    return (!prev || Number(prev.dataset.id) < id) && (!next || Number(next.dataset.id) > id);
  }

  remove(el) {
    const next = nextMessage(el);
    el.remove();
    if (next) this.settleOne(next);
    else this.trimTail();
  }

  /** A message changed (its state or its time): group and separate it and the next afresh. */
  settle(el) {
    this.settleOne(el);
    const next = nextMessage(el);
    if (next) this.settleOne(next);
  }

  settleOne(el) {
    this.fixDay(el);
    this.regroup(el);
  }

  /** Exactly one day separator before `el` when its day differs from the message above. */
  fixDay(el) {
    const prev = previousMessage(el);
    const gap = [];
    for (let node = el.previousElementSibling; node && node !== prev; node = node.previousElementSibling) {
      gap.unshift(node);
    }
    const separators = gap.filter(isDaySeparator);
    const needed = !prev || messageDay(prev) !== messageDay(el);
    if (!needed) {
      for (const separator of separators) separator.remove();
      return;
    }
    const [keep, ...extra] = separators;
    for (const separator of extra) separator.remove();
    const first = gap[0] || el;
    if (!keep) {
      this.list.insertBefore(this.buildSeparator(el), first);
    } else {
      if (keep !== first) this.list.insertBefore(keep, first);
      this.label(keep, el.dataset.createdAt);
    }
  }

  /** Day separators left below the last message go. */
  trimTail() {
    let node = this.list.lastElementChild;
    while (node && !isMessage(node)) {
      const prev = node.previousElementSibling;
      if (isDaySeparator(node)) node.remove();
      node = prev;
    }
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

  buildSeparator(el) {
    const separator = h('li', { className: 'day-separator' }, h('span', { className: 'day-label' }));
    this.label(separator, el.dataset.createdAt);
    return separator;
  }

  label(separator, createdAt) {
    const date = new Date(Number(createdAt));
    separator.dataset.createdAt = String(createdAt);
    separator.firstElementChild.textContent = Number.isNaN(date.getTime()) ? '' : formatDay(date);
  }

  relabelIfNewDay() {
    const today = dayKey(Date.now());
    if (today === this.labelledDay) return;
    this.labelledDay = today;
    for (const separator of this.list.querySelectorAll('.day-separator')) {
      this.label(separator, separator.dataset.createdAt);
    }
  }
}
