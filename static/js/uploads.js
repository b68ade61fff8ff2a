// Sending files: the attach button, files dropped on the conversation and pictures pasted
// into the text box. Each file is checked here first (type, size), then sent over HTTP with
// XMLHttpRequest (fetch reports no upload progress) under a client_id of its own, so a
// retry never makes a second message. Each upload has a row in the tray above the composer.
// The composer's text goes with the first file as its caption; an upload that failed for
// want of a connection goes again by itself once the page is connected again.

import { formatSize, h, newClientId } from './dom.js';
import { isRetryable, retryDelay } from './net.js';

export const ALLOWED_EXTENSIONS = ['txt', 'pdf', 'png', 'jpg', 'jpeg', 'gif'];
const PASTED_EXTENSIONS = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/gif': 'gif' };
const GENERIC_PASTED_NAME = /^(image|blob)?(\.\w+)?$/i;

function extensionOf(name) {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
}

function hasFiles(event) {
  return Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types || []).includes('Files');
}

function pad(n) {
  return String(n).padStart(2, '0');
}

/** A pasted picture comes as "image.png"; give it a name that tells one from another. */
function namePasted(file, index) {
  const ext = PASTED_EXTENSIONS[file.type];
  if (!ext || !GENERIC_PASTED_NAME.test(file.name || '')) return file;
  const d = new Date();
  const stamp = `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`;
  const suffix = index > 0 ? `-${index + 1}` : '';
  return new File([file], `pasted-${stamp}${suffix}.${ext}`, { type: file.type, lastModified: Date.now() });
}

function parseJson(text) {
  try {
    const data = JSON.parse(text);
    return data && typeof data === 'object' ? data : null;
  } catch {
    return null;
  }
}

export class Uploader {
  /**
   * maxBytes: the server's upload limit; csrfToken: sent as X-CSRFToken;
   * currentChatId(): the open chat's id, or null; chatName(chatId): its name;
   * onUploaded(message): the server stored an upload; notify(text): show a problem;
   * announce(text): tell screen readers, politely; caption(): the composer's text, to
   * send with the next file; onCaptionSent(chatId, caption): a captioned file was stored.
   */
  constructor({
    root, maxBytes, csrfToken, currentChatId, chatName, onUploaded, notify, announce,
    caption, onCaptionSent,
  }) {
    this.maxBytes = maxBytes;
    this.caption = caption;
    this.onCaptionSent = onCaptionSent;
    this.csrfToken = csrfToken;
    this.currentChatId = currentChatId;
    this.chatName = chatName;
    this.onUploaded = onUploaded;
    this.notify = notify;
    this.announce = announce;
    this.uploads = new Set();
    this.count = 0;

    this.button = root.querySelector('#attach-button');
    this.input = root.querySelector('#file-input');
    this.tray = root.querySelector('#upload-tray');
    this.hint = root.querySelector('#drop-hint');
    this.zone = root.querySelector('.right-panel');
    this.textBox = root.querySelector('#message-input');
    this.dismissAll = h('button', { type: 'button', className: 'button button-small' });
    this.dismissBar = h('div', { className: 'upload-tray-bar', hidden: true }, this.dismissAll);
    this.dismissAll.addEventListener('click', () => this.dismissFailed());
    this.tray.before(this.dismissBar);

    this.button.addEventListener('click', () => {
      if (this.checkOpen()) this.input.click();
    });
    this.input.addEventListener('change', () => {
      const files = Array.from(this.input.files || []);
      // Cleared, so choosing the same file again still counts as a change.
      this.input.value = '';
      this.addFiles(files);
    });
    this.textBox.addEventListener('paste', (event) => this.onPaste(event));
    this.listenForDrops();
  }

  enable(on) {
    this.button.disabled = !on;
  }

  /** True while a file is on its way (leaving the page would drop it). */
  isBusy() {
    return [...this.uploads].some((upload) => upload.state === 'sending' || upload.state === 'waiting');
  }

  /** The open chat changed: rows of uploads to another chat say where they go. */
  setOpenChat() {
    for (const upload of this.uploads) this.renderWhere(upload);
  }

  checkOpen() {
    if (this.currentChatId() !== null) return true;
    this.notify('Open a chat before sending a file.');
    return false;
  }

  /** Check each file and send the good ones to the open chat. */
  addFiles(files) {
    if (!files.length || !this.checkOpen()) return;
    const chatId = this.currentChatId();
    this.notify('');
    let caption = this.caption();
    for (const file of files) {
      const upload = {
        file,
        name: file.name || 'file',
        chatId,
        clientId: newClientId(),
        xhr: null,
        state: 'sending',
        id: ++this.count,
        retries: 0, // passing failures in a row (a locked database): the next wait grows
        timer: null,
        caption: '',
        auto: false, // failed for want of a connection: goes again after the reconnect
      };
      const problem = this.check(file, upload.name);
      if (!problem) {
        upload.caption = caption;
        caption = '';
      }
      this.uploads.add(upload);
      this.buildRow(upload);
      if (problem) {
        this.fail(upload, problem, { retry: false });
      } else {
        this.send(upload);
      }
    }
  }

  /** The sentence refusing a file, or '' when it may go. */
  check(file, name) {
    if (!ALLOWED_EXTENSIONS.includes(extensionOf(name))) {
      return `${name} cannot be sent: only txt, pdf, png, jpg and gif files can.`;
    }
    if (file.size > this.maxBytes) return `${name} is larger than ${formatSize(this.maxBytes)}.`;
    if (file.size === 0) return `${name} is empty.`;
    return '';
  }

  send(upload) {
    const form = new FormData();
    form.append('chat_id', String(upload.chatId));
    form.append('client_id', upload.clientId);
    if (upload.caption) form.append('caption', upload.caption);
    form.append('file', upload.file, upload.name);
    const xhr = new XMLHttpRequest();
    upload.xhr = xhr;
    upload.state = 'sending';
    this.renderSending(upload);
    xhr.open('POST', '/upload');
    xhr.setRequestHeader('X-CSRFToken', this.csrfToken);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (event) => {
      if (upload.xhr === xhr && event.lengthComputable) this.progress(upload, event.loaded, event.total);
    });
    xhr.addEventListener('load', () => {
      if (upload.xhr === xhr) this.finished(upload, xhr);
    });
    xhr.addEventListener('error', () => {
      if (upload.xhr !== xhr) return;
      this.fail(upload, 'The upload failed. Check your connection and try again.', { retry: true });
      upload.auto = true;
    });
    xhr.send(form);
    this.announce(`Sending ${upload.name}.`);
  }

  progress(upload, loaded, total) {
    const bar = upload.parts.progress;
    if (loaded >= total) {
      // Every byte is out; the server still checks the file and makes its thumbnail.
      bar.removeAttribute('value');
      upload.parts.note.textContent = 'Processing…';
    } else {
      bar.value = loaded / total;
      upload.parts.note.textContent = `${Math.floor((100 * loaded) / total)}%`;
    }
  }

  finished(upload, xhr) {
    const data = parseJson(xhr.responseText);
    if (xhr.status >= 200 && xhr.status < 300 && data && data.ok && data.message) {
      this.remove(upload);
      this.announce(`${upload.name} sent.`);
      this.onUploaded(data.message);
      this.onCaptionSent(upload.chatId, upload.caption);
      return;
    }
    if (xhr.status === 503 || isRetryable(data)) {
      this.sendLater(upload);
      return;
    }
    const fromServer = data && typeof data.error === 'string' && data.error ? data.error : '';
    let error = fromServer || 'The server could not take the file. Try again.';
    if (xhr.status === 401) error = 'You are logged out. Log in again in another tab, then retry.';
    else if (xhr.status === 413 && !fromServer) error = `${upload.name} is larger than ${formatSize(this.maxBytes)}.`;
    // The same bytes would be refused again: no Retry for a refused or oversized file.
    this.fail(upload, error, { retry: xhr.status !== 400 && xhr.status !== 413 });
  }

  /** A passing failure on the server: the same file (same client_id) goes again by itself. */
  sendLater(upload) {
    upload.xhr = null;
    upload.state = 'waiting';
    upload.parts.li.dataset.state = 'waiting';
    upload.parts.progress.removeAttribute('value');
    upload.parts.note.textContent = 'The server is busy. Trying again…';
    upload.timer = setTimeout(() => {
      upload.timer = null;
      if (this.uploads.has(upload)) this.send(upload);
    }, retryDelay(upload.retries));
    upload.retries += 1;
  }

  /**
   * The page is connected again: each upload that failed for want of a connection goes
   * again by itself, once (failing again the same way, it waits for the next reconnect).
   */
  resume() {
    for (const upload of this.uploads) {
      if (upload.state !== 'failed' || !upload.auto) continue;
      this.send(upload);
    }
  }

  /** "Dismiss all": every failed row goes at once. */
  dismissFailed() {
    for (const upload of [...this.uploads]) {
      if (upload.state === 'failed') this.remove(upload);
    }
    if (this.tray.hidden || !this.tray.contains(document.activeElement)) this.textBox.focus();
  }

  /** Show "Dismiss all" while more than one row has failed. */
  renderDismissAll() {
    const failed = [...this.uploads].filter((upload) => upload.state === 'failed').length;
    const hadFocus = this.dismissBar.contains(document.activeElement);
    this.dismissBar.hidden = failed < 2;
    this.dismissAll.textContent = `Dismiss all ${failed} failed files`;
    if (hadFocus && this.dismissBar.hidden) this.textBox.focus();
  }

  fail(upload, error, { retry }) {
    upload.state = 'failed';
    upload.auto = false;
    upload.xhr = null;
    const { parts } = upload;
    parts.li.dataset.state = 'failed';
    parts.progress.hidden = true;
    parts.note.textContent = '';
    parts.error.textContent = error;
    parts.error.hidden = false;
    const hadFocus = parts.li.contains(document.activeElement);
    const buttons = [];
    if (retry) buttons.push(this.actionButton(upload, 'Retry', () => this.send(upload)));
    buttons.push(this.actionButton(upload, 'Dismiss', () => this.remove(upload)));
    parts.actions.replaceChildren(...buttons);
    if (hadFocus) buttons[0].focus();
    this.announce(error);
    this.renderDismissAll();
  }

  cancel(upload) {
    const { xhr } = upload;
    upload.xhr = null;
    clearTimeout(upload.timer);
    if (xhr) xhr.abort();
    this.remove(upload);
    this.announce(`Sending ${upload.name} cancelled.`);
  }

  remove(upload) {
    const hadFocus = upload.parts.li.contains(document.activeElement);
    this.uploads.delete(upload);
    upload.parts.li.remove();
    this.tray.hidden = this.uploads.size === 0;
    this.renderDismissAll();
    if (hadFocus) {
      const other = this.tray.querySelector('button');
      (other || (this.button.disabled ? this.textBox : this.button)).focus();
    }
  }

  // Rows of the tray

  buildRow(upload) {
    const nameId = `upload-name-${upload.id}`;
    const parts = {
      name: h('span', { className: 'upload-name', id: nameId, text: upload.name, title: upload.name }),
      where: h('span', { className: 'upload-where' }),
      size: h('span', { className: 'upload-size', text: formatSize(upload.file.size) }),
      progress: h('progress', { className: 'upload-progress', max: '1', 'aria-labelledby': nameId }),
      note: h('span', { className: 'upload-note' }),
      caption: h('span', { className: 'upload-caption', text: upload.caption, hidden: !upload.caption }),
      error: h('p', { className: 'upload-error', hidden: true }),
      actions: h('span', { className: 'upload-actions' }),
    };
    parts.li = h(
      'li',
      { className: 'upload', dataset: { state: 'sending' } },
      h(
        'span',
        { className: 'upload-main' },
        h('span', { className: 'upload-title' }, parts.name, parts.where, parts.size),
        parts.caption,
        h('span', { className: 'upload-bar' }, parts.progress, parts.note),
        parts.error,
      ),
      parts.actions,
    );
    upload.parts = parts;
    this.renderWhere(upload);
    this.tray.append(parts.li);
    this.tray.hidden = false;
  }

  renderSending(upload) {
    const { parts } = upload;
    const hadFocus = parts.li.contains(document.activeElement);
    parts.li.dataset.state = 'sending';
    parts.error.hidden = true;
    parts.error.textContent = '';
    parts.progress.hidden = false;
    parts.progress.value = 0;
    parts.note.textContent = '0%';
    const cancel = this.actionButton(upload, 'Cancel', () => this.cancel(upload));
    parts.actions.replaceChildren(cancel);
    if (hadFocus) cancel.focus();
    this.renderDismissAll();
  }

  renderWhere(upload) {
    const elsewhere = upload.chatId !== this.currentChatId();
    upload.parts.where.textContent = elsewhere ? ` to ${this.chatName(upload.chatId)}` : '';
  }

  actionButton(upload, label, onClick) {
    const button = h(
      'button',
      { type: 'button', className: 'button button-small' },
      label,
      h('span', { className: 'visually-hidden', text: ` ${upload.name}` }),
    );
    button.addEventListener('click', onClick);
    return button;
  }

  // Pasting and dropping

  onPaste(event) {
    const data = event.clipboardData;
    if (!data) return;
    const files = Array.from(data.files || []);
    // Text copied from a document may carry a picture of itself; the text is what was meant.
    if (!files.length || Array.from(data.types || []).includes('text/plain')) return;
    event.preventDefault();
    this.addFiles(files.map(namePasted));
  }

  listenForDrops() {
    let depth = 0;
    const showHint = (on) => {
      this.hint.hidden = !on;
      this.zone.classList.toggle('dragging-files', on);
    };
    this.zone.addEventListener('dragenter', (event) => {
      if (!hasFiles(event) || this.currentChatId() === null) return;
      event.preventDefault();
      depth += 1;
      showHint(true);
    });
    this.zone.addEventListener('dragover', (event) => {
      if (!hasFiles(event) || this.currentChatId() === null) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
    });
    this.zone.addEventListener('dragleave', (event) => {
      if (!hasFiles(event)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) showHint(false);
    });
    this.zone.addEventListener('drop', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth = 0;
      showHint(false);
      this.addFiles(Array.from(event.dataTransfer.files || []));
    });
    // A file dropped anywhere else would make the browser leave the chat to show it.
    window.addEventListener('dragover', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      if (!this.zone.contains(event.target) || this.currentChatId() === null) {
        event.dataTransfer.dropEffect = 'none';
      }
    });
    window.addEventListener('drop', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth = 0;
      showHint(false);
    });
  }
}
