// The console's only door to handoverd: same-origin fetches with the
// session cookie, the CSRF token on every write, and errors turned into
// the API's own words.

let csrf = '';
let onSignedOut = () => {};

/** setSession remembers the CSRF token and what to do when the session ends. */
export function setSession(token, signedOut) {
  csrf = token || '';
  if (signedOut) onSignedOut = signedOut;
}

/** APIError is a refused request, with the API's reason as its message. */
export class APIError extends Error {
  constructor(message, status, field) {
    super(message);
    this.status = status;
    this.field = field || '';
  }
}

// reason finds the words in any of the APIs' error shapes:
// {"error":{"code","field","message"}}, Engage's {"status","message"},
// Lexer's {"error":"..."}.
function reason(data, res) {
  if (data && typeof data.error === 'object' && data.error && data.error.message) return data.error.message;
  if (data && typeof data.message === 'string' && data.message) return data.message;
  if (data && typeof data.error === 'string' && data.error) return data.error;
  return `handoverd answered ${res.status} ${res.statusText || ''}`.trim();
}

/** api calls method path with an optional JSON body and returns the decoded answer. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new APIError('handoverd cannot be reached: check your connection', 0);
  }
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch (e) { data = null; }
  }
  if (!res.ok) {
    const err = new APIError(reason(data, res), res.status, data && data.error && data.error.field);
    if (res.status === 401 && !path.startsWith('/console/session')) onSignedOut(err);
    throw err;
  }
  return data;
}

const EVENTS = ['message_created', 'message_updated', 'conversation_created', 'conversation_status_changed',
  'conversation_owner_changed', 'assignee_changed', 'conversation_updated', 'conversation_opened', 'conversation_resolved'];

/**
 * live follows an account's events over Server-Sent Events. The browser
 * resumes after a dropped connection with Last-Event-ID; if the stream is
 * closed for good (a restart, say) it is opened again after the last event
 * seen, so nothing is missed.
 */
export function live(accountID, onEvent, onState) {
  let last = '';
  let es = null;
  let stopped = false;
  let timer = 0;
  const open = () => {
    if (stopped) return;
    const url = `/api/v1/accounts/${accountID}/events` + (last ? `?since=${encodeURIComponent(last)}` : '');
    es = new EventSource(url);
    es.onopen = () => onState('live');
    es.onerror = () => {
      onState('down');
      if (es.readyState === EventSource.CLOSED) {
        clearTimeout(timer);
        timer = setTimeout(async () => {
          try { await api('GET', '/console/session'); } catch (e) { if (e.status === 401) { onSignedOut(e); return; } }
          open();
        }, 2000);
      }
    };
    for (const name of EVENTS) {
      es.addEventListener(name, (e) => {
        if (e.lastEventId) last = e.lastEventId;
        let data = null;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        onEvent(name, data);
      });
    }
  };
  open();
  return () => { stopped = true; clearTimeout(timer); if (es) es.close(); };
}
