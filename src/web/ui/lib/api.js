// @ts-check
// The API client: JSON over /api/v1 with the session's CSRF token on every mutating call.
// Errors arrive as {error:{code,message,fields?}} and are thrown as ApiError.
import { session } from './store.js';

const API = '/api/v1';

/** @typedef {{ path: string, message: string }} FieldError */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {any} body the parsed error body, if any
   */
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    /** @type {string} */
    this.code = body?.error?.code ?? 'DC_HTTP';
    /** @type {FieldError[]} */
    this.fields = body?.error?.fields ?? [];
  }
}

/** Called when a logged-in session is refused (expired, logged out elsewhere). */
let onAuthLost = () => {};

/** @param {() => void} fn */
export function setOnAuthLost(fn) {
  onAuthLost = fn;
}

/**
 * Call the API; the caller names the answer's type with a JSDoc cast.
 * @param {'GET' | 'POST' | 'PUT' | 'DELETE'} method
 * @param {string} path below /api/v1
 * @param {unknown} [body] sent as JSON, or as bytes when raw
 * @param {boolean} [raw]
 * @returns {Promise<any>}
 */
export async function api(method, path, body, raw = false) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (method !== 'GET') headers['x-csrf-token'] = session.csrf;
  /** @type {BodyInit | undefined} */
  let payload;
  if (body !== undefined) {
    if (raw) {
      headers['content-type'] = 'application/octet-stream';
      payload = /** @type {ArrayBuffer} */ (body);
    } else {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
  }
  const r = await fetch(API + path, { method, headers, body: payload, credentials: 'same-origin' });
  if (r.status === 204) return null;
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const e = new ApiError(r.status, data);
    if (r.status === 401 && e.code === 'DC_WEB_AUTH_REQUIRED' && session.loggedIn) {
      session.loggedIn = false;
      onAuthLost();
    }
    throw e;
  }
  return data;
}

/**
 * The URL of the event stream.
 */
export const EVENTS_URL = `${API}/events`;

/**
 * An error's fields, if it is an ApiError.
 * @param {unknown} e
 * @returns {FieldError[]}
 */
export function fieldsOf(e) {
  return e instanceof ApiError ? e.fields : [];
}

/**
 * "CODE: message" for an ApiError, else the message.
 * @param {unknown} e
 */
export function codeAndMessage(e) {
  return e instanceof ApiError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
}
