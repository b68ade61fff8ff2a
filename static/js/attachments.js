// How an attachment looks in a message: a picture's thumbnail that opens the full
// picture in a viewer, or a file card (type, name, size, download link).

import { formatSize, h, shownFileName } from './dom.js';

// The box the server shrinks a picture into (attachments.THUMBNAIL_SIZE), given by the page.
const THUMBNAIL_BOX_PX = Number(document.getElementById('chat-app').dataset.thumbnailPx);
// Room kept for the viewer's bar (name, Download, Close) above the picture.
const VIEWER_BAR_PX = 60;

const FILE_KINDS = {
  'application/pdf': 'PDF',
  'text/plain': 'TXT',
};

/** Only links into our own upload routes are followed; anything else is shown as text. */
function ownUploadUrl(url) {
  return typeof url === 'string' && /^\/uploads\/\d+(\/thumbnail)?$/.test(url) ? url : null;
}

/** The size a picture of `width` x `height` takes when it must fit in `boxWidth` x `boxHeight`. */
export function fitWithin(width, height, boxWidth = THUMBNAIL_BOX_PX, boxHeight = boxWidth) {
  const w = Number(width);
  const ht = Number(height);
  if (!(w > 0 && ht > 0)) return null;
  const scale = Math.min(1, boxWidth / w, boxHeight / ht);
  return { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(ht * scale)) };
}

function fileKind(attachment, name) {
  const type = String(attachment.mime_type || '').split(';')[0].trim().toLowerCase();
  if (FILE_KINDS[type]) return FILE_KINDS[type];
  const ext = splitName(name).ext.slice(1);
  return ext && ext.length <= 4 ? ext.toUpperCase() : 'FILE';
}

/** A file name's stem and its extension (with the dot, or empty). */
function splitName(name) {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? { stem: name.slice(0, dot), ext: name.slice(dot) } : { stem: name, ext: '' };
}

/**
 * A file name as nodes that cannot pretend: the stem isolated in a <bdi> (right-to-left
 * letters in it cannot move the extension), the extension after it in a left-to-right
 * container, each its own element.
 */
export function fileNameNodes(name) {
  const { stem, ext } = splitName(name);
  return [
    h('bdi', { className: 'file-stem', text: stem }),
    ext ? h('span', { className: 'file-ext', text: ext }) : null,
  ].filter(Boolean);
}

/**
 * The element for `attachment` ({id, name, mime_type, size, url, thumbnail_url, width,
 * height}); `viewer.open(attachment, opener)` shows a picture in full.
 */
export function buildAttachment(attachment, viewer) {
  const name = shownFileName(attachment.name);
  const url = ownUploadUrl(attachment.url);
  const thumbnailUrl = ownUploadUrl(attachment.thumbnail_url);
  if (url && thumbnailUrl) return buildPicture(attachment, name, url, thumbnailUrl, viewer);
  return buildFileCard(attachment, name, url);
}

function buildPicture(attachment, name, url, thumbnailUrl, viewer) {
  // Width and height reserve the space before the picture loads, so the history never jumps.
  const size = fitWithin(attachment.width, attachment.height);
  const img = h('img', {
    className: 'attachment-thumb',
    src: thumbnailUrl,
    alt: name,
    width: size && size.width,
    height: size && size.height,
    decoding: 'async',
  });
  const link = h(
    'a',
    {
      className: 'attachment-picture',
      href: url,
      target: '_blank',
      rel: 'noopener',
      title: `Open ${name}`,
    },
    img,
  );
  img.addEventListener('error', () => link.classList.add('broken'), { once: true });
  link.addEventListener('click', (event) => {
    if (!viewer || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    viewer.open({ ...attachment, name, url }, link);
  });
  return h('div', { className: 'message-attachment' }, link);
}

function buildFileCard(attachment, name, url) {
  const kind = fileKind(attachment, name);
  const size = formatSize(attachment.size);
  return h(
    'div',
    { className: 'message-attachment attachment-file' },
    h('span', { className: `file-icon file-icon-${kind.toLowerCase()}`, 'aria-hidden': 'true', text: kind }),
    h(
      'span',
      { className: 'file-text' },
      h('span', { className: 'file-name', dir: 'ltr', title: name }, ...fileNameNodes(name)),
      h('span', { className: 'file-meta', text: size ? `${kind} · ${size}` : kind }),
    ),
    url
      ? h(
        'a',
        { className: 'button button-small file-download', href: url, download: name },
        'Download',
        h('span', { className: 'visually-hidden', text: ` ${name}` }),
      )
      : null,
  );
}

/** The full-size picture in a modal <dialog>: name, download link, Close (and Escape). */
export class ImageViewer {
  constructor(dialog) {
    this.dialog = dialog;
    this.body = dialog.querySelector('.viewer-body');
    this.nameEl = dialog.querySelector('.viewer-name');
    this.download = dialog.querySelector('.viewer-download');
    this.opener = null;
    dialog.querySelector('.viewer-close').addEventListener('click', () => dialog.close());
    // A click on the backdrop (the dialog itself, outside its content) closes it too.
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener('close', () => {
      if (this.opener && this.opener.isConnected) this.opener.focus();
      this.opener = null;
    });
  }

  open(attachment, opener) {
    if (typeof this.dialog.showModal !== 'function') {
      window.open(attachment.url, '_blank', 'noopener');
      return;
    }
    this.opener = opener || null;
    this.nameEl.dir = 'ltr';
    this.nameEl.replaceChildren(...fileNameNodes(attachment.name));
    // The stem and extension are separate boxes; the dialog's name is the name in one piece.
    this.nameEl.setAttribute('aria-label', attachment.name);
    this.download.href = attachment.url;
    this.download.setAttribute('download', attachment.name);
    // Sized to fit the window before it loads; a fresh element, so the last picture
    // never shows while this one loads.
    const size = fitWithin(
      attachment.width,
      attachment.height,
      window.innerWidth * 0.96,
      window.innerHeight * 0.96 - VIEWER_BAR_PX,
    );
    this.body.replaceChildren(h('img', {
      className: 'viewer-image',
      src: attachment.url,
      alt: attachment.name,
      width: size && size.width,
      height: size && size.height,
    }));
    this.dialog.showModal();
  }
}
