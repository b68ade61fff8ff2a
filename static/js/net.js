// Socket.IO requests that always settle: every emit waits for the server's
// acknowledgement and resolves to {ok: true, ...} or {ok: false, error}.

const DEFAULT_TIMEOUT_MS = 10000;
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
