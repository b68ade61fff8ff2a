// Search-as-you-type on the Find people page: GET /find?q= answers JSON,
// each result gets a form that opens a direct chat (POST /add).
(function () {
  'use strict';

  const DEBOUNCE_MS = 150;
  const app = document.getElementById('find-app');
  const input = document.getElementById('find-query');
  const results = document.getElementById('find-results');
  const status = document.getElementById('find-status');
  if (!app || !input || !results || !status) return;

  const myId = Number(app.dataset.userId);
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = csrfMeta ? csrfMeta.getAttribute('content') : '';
  let timer = null;
  let controller = null;

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.entries(props || {}).forEach(([key, value]) => {
      if (key === 'className') node.className = value;
      else if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value);
    });
    children.forEach((child) => node.append(child));
    return node;
  }

  function hidden(name, value) {
    return el('input', { type: 'hidden', name, value: String(value) });
  }

  function renderPerson(person) {
    const isMe = person.id === myId;
    const name = String(person.username);
    return el(
      'li',
      { className: 'person' },
      el(
        'span',
        { className: 'person-name' },
        el('span', { className: 'avatar', 'aria-hidden': 'true', text: (Array.from(name)[0] || '?').toUpperCase() }),
        el('span', { className: 'person-label', text: isMe ? `${name} (you)` : name }),
      ),
      el(
        'form',
        { method: 'post', action: '/add', className: 'person-form' },
        hidden('user_id', person.id),
        hidden('csrf_token', csrfToken),
        el('button', {
          type: 'submit',
          className: 'button button-small button-primary',
          text: isMe ? 'Notes to self' : 'Message',
        }),
      ),
    );
  }

  function render(people) {
    results.replaceChildren(...people.map(renderPerson));
    if (people.length === 0) status.textContent = 'No one found';
    else status.textContent = people.length === 1 ? '1 person' : `${people.length} people`;
  }

  async function search(query) {
    if (controller) controller.abort();
    controller = new AbortController();
    try {
      const response = await fetch(`/find?q=${encodeURIComponent(query)}`, {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
        signal: controller.signal,
      });
      if (!response.ok) {
        let message = `The search failed (${response.status}).`;
        try {
          const data = await response.json();
          if (data && typeof data.error === 'string') message = data.error;
        } catch (err) {
          // Not JSON: keep the generic message.
        }
        status.textContent = message;
        return;
      }
      const people = await response.json();
      render(Array.isArray(people) ? people.filter((p) => p && Number.isInteger(p.id)) : []);
    } catch (err) {
      if (err.name === 'AbortError') return;
      status.textContent = 'The search failed. Check your connection and try again.';
    }
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => search(input.value.trim()), DEBOUNCE_MS);
  });
  input.form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(timer);
    search(input.value.trim());
  });

  search(input.value.trim());
}());
