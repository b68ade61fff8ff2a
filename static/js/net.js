// Socket.IO requests that always settle: every emit waits for the server's
// acknowledgement and resolves to {ok: true, ...} or {ok: false, error}.

const DEFAULT_TIMEOUT_MS = 10000;
// Waits before sending again what met a passing failure: doubling to a cap, each drawn
// between half and all of its step, so the pages that met the same outage spread out.
const RETRY_FIRST_MS = 500;
const RETRY_CAP_MS = 10000;
const TIMEOUT_ERROR = 'The server did not answer in time. Check your connection and try again.';
const OFFLINE_ERROR = 'You are offline. Try again when the connection is back.';

/**
 * Emit `event` with `payload`; resolve with the acknowledgement, never reject.
 * A request the server never answered resolves with `timedOut: true`; one made while
 * disconnected resolves at once with `offline: true`.
 */
export function request(socket, event, payload, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return new Promise((resolve) => {
    // Socket.IO would buffer it and send it after the reconnect, long after its answer
    // stopped mattering (and after the page has resynced on its own).
    if (!socket.connected) {
      resolve({ ok: false, error: OFFLINE_ERROR, offline: true });
      return;
    }
    socket.timeout(timeoutMs).emit(event, payload, (err, response) => {
      if (err) {
        resolve({ ok: false, error: TIMEOUT_ERROR, timedOut: true });
      } else if (!response || typeof response !== 'object') {
        resolve({ ok: false, error: 'The server sent an answer this page does not understand.' });
      } else if (response.ok !== true) {
        const error = typeof response.error === 'string' && response.error
          ? response.error
          : 'Something went wrong. Please try again.';
        resolve({ ...response, ok: false, error });
      } else {
        resolve(response);
      }
    });
  });
}

/** True when the server says the same request may succeed if sent again (a locked database,
 * a restarting Redis): the answer carries `retryable: true`. */
export function isRetryable(response) {
  return Boolean(response) && response.retryable === true;
}

/** How long to wait before the `attempt`-th retry (0 for the first), in milliseconds. */
export function retryDelay(attempt) {
  const step = Math.min(RETRY_CAP_MS, RETRY_FIRST_MS * 2 ** Math.min(attempt, 16));
  return step / 2 + Math.random() * (step / 2);
}
