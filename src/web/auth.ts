import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { DuocellError } from '../core/errors.js';
import { logger } from '../core/logger.js';
import { LogLimiter } from '../core/log-limit.js';
import type { KeyValueStore } from './deps.js';
import { normalizeSecret } from './secret.js';

/**
 * The admin account of the web page.
 *
 * - No default password: until one is set, only the first-boot set-up is open, and if the
 *   board provides a first-boot secret (printed on the label, in the image), set-up needs it.
 * - The password is kept as an scrypt hash (`scrypt$N$r$p$salt$hash`, base64).
 * - A login creates a session: a random 256-bit token in an HttpOnly, SameSite=Strict cookie;
 *   only its SHA-256 is stored, with a per-session CSRF token, an idle and an absolute expiry.
 * - Failed logins (and wrong first-boot secrets) are counted per client and overall; past the
 *   limit the client is refused before any scrypt work is done.
 */

const log = logger('duocell:web:auth');
/** A password-guessing run writes one line per minute and a count, not one line per guess. */
const failureLog = new LogLimiter({ log });

const KEY_HASH = 'web.admin.hash';
const KEY_SESSIONS = 'web.sessions';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 256;

export interface AuthOptions {
  kv: KeyValueStore;
  /** Board-provided secret that the first-boot set-up must present. */
  firstBootSecret?: string;
  /** Called once the first-boot set-up has set the admin password (e.g. to take the secret off the banners). */
  onSetUp?: () => void;
  /** Idle expiry of a session (default 2 h). */
  idleMs?: number;
  /** Absolute expiry of a session (default 24 h). */
  maxAgeMs?: number;
  /** At most this many live sessions; the oldest is dropped (default 16). */
  maxSessions?: number;
  /** Failed attempts allowed per client per window (default 5 per 60 s). */
  perClientFailures?: number;
  /** Failed attempts allowed over all clients per window (default 30 per 60 s). */
  globalFailures?: number;
  windowMs?: number;
  /** scrypt cost (default 2^15). Tests may lower it. */
  scryptN?: number;
  now?: () => number;
  /** How often the server looks for expired sessions to close their streams (default idle/4, 1-60 s). */
  sweepMs?: number;
}

export interface SessionRecord {
  csrf: string;
  created: number;
  seen: number;
}

/** Why sessions ended: their open event streams and other long requests are closed at once. */
export type SessionEndReason = 'logout' | 'password-changed' | 'expired' | 'evicted';

export interface Login {
  token: string;
  csrf: string;
}

const SCRYPT_R = 8;
const SCRYPT_P = 1;
const KEYLEN = 32;

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, n = 1 << 15): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEYLEN, { N: n, r: SCRYPT_R, p: SCRYPT_P, maxmem: 256 * n * SCRYPT_R });
  return ['scrypt', n, SCRYPT_R, SCRYPT_P, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  // Refuse absurd parameters: a tampered hash must not make us allocate gigabytes.
  if (!Number.isInteger(n) || n < 2 || n > 1 << 20 || (n & (n - 1)) !== 0) return false;
  if (!Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) return false;
  const salt = Buffer.from(parts[4]!, 'base64');
  const want = Buffer.from(parts[5]!, 'base64');
  if (want.length < 16 || want.length > 64) return false;
  const got = await scryptAsync(password, salt, want.length, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 });
  return timingSafeEqual(got, want);
}

export function checkPasswordRules(password: unknown): string {
  if (typeof password !== 'string') throw new DuocellError('DC_WEB_WEAK_PASSWORD', 'the password must be a string');
  if (password.length < PASSWORD_MIN)
    throw new DuocellError('DC_WEB_WEAK_PASSWORD', `the password must have at least ${PASSWORD_MIN} characters`);
  if (password.length > PASSWORD_MAX)
    throw new DuocellError('DC_WEB_WEAK_PASSWORD', `the password must have at most ${PASSWORD_MAX} characters`);
  if (/^(.)\1*$/u.test(password)) throw new DuocellError('DC_WEB_WEAK_PASSWORD', 'the password must not repeat one character');
  return password;
}

/** Constant-time equality of two strings (false when lengths differ). */
export function safeEqual(a: string | undefined, b: string | undefined): boolean {
  if (typeof a !== 'string' || typeof b !== 'string' || a.length === 0) return false;
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Counts failures in a sliding window, per key and overall, with bounded memory. */
export class FailureLimiter {
  readonly #per = new Map<string, number[]>();
  #all: number[] = [];
  readonly #perMax: number;
  readonly #allMax: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  static readonly MAX_KEYS = 4096;

  constructor(perMax: number, allMax: number, windowMs: number, now: () => number) {
    this.#perMax = perMax;
    this.#allMax = allMax;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Milliseconds until `key` may try again; 0 when it may now. */
  retryAfter(key: string): number {
    const now = this.#now();
    const cut = now - this.#windowMs;
    this.#all = this.#all.filter((t) => t > cut);
    const mine = (this.#per.get(key) ?? []).filter((t) => t > cut);
    if (mine.length === 0) this.#per.delete(key);
    else this.#per.set(key, mine);
    let wait = 0;
    if (mine.length >= this.#perMax) wait = Math.max(wait, mine[mine.length - this.#perMax]! + this.#windowMs - now);
    if (this.#all.length >= this.#allMax) wait = Math.max(wait, this.#all[this.#all.length - this.#allMax]! + this.#windowMs - now);
    return Math.max(0, wait);
  }

  fail(key: string): void {
    const now = this.#now();
    this.#all.push(now);
    if (this.#all.length > this.#allMax * 2) this.#all.splice(0, this.#all.length - this.#allMax * 2);
    let mine = this.#per.get(key);
    if (mine === undefined) {
      if (this.#per.size >= FailureLimiter.MAX_KEYS) {
        const oldest = this.#per.keys().next().value;
        if (oldest !== undefined) this.#per.delete(oldest);
      }
      mine = [];
      this.#per.set(key, mine);
    }
    mine.push(now);
    if (mine.length > this.#perMax * 2) mine.splice(0, mine.length - this.#perMax * 2);
  }

  clear(key: string): void {
    this.#per.delete(key);
  }

  get keys(): number {
    return this.#per.size;
  }
}

export class Auth {
  readonly #kv: KeyValueStore;
  readonly #secret: string | undefined;
  readonly #onSetUp: (() => void) | undefined;
  readonly #idleMs: number;
  readonly #maxAgeMs: number;
  readonly #maxSessions: number;
  readonly #n: number;
  readonly #now: () => number;
  readonly #sweepMs: number | undefined;
  readonly limiter: FailureLimiter;
  #sessions: Map<string, SessionRecord>;
  readonly #onEnd = new Set<(ids: readonly string[], why: SessionEndReason) => void>();
  /** A set-up in progress (scrypt is async): a second one must not race it. */
  #settingUp = false;

  constructor(o: AuthOptions) {
    this.#kv = o.kv;
    // A secret in the generated format is compared normalised (case, dashes, look-alikes: web/secret.ts).
    this.#secret = o.firstBootSecret === undefined || o.firstBootSecret === '' ? undefined : (normalizeSecret(o.firstBootSecret) ?? o.firstBootSecret);
    this.#onSetUp = o.onSetUp;
    this.#idleMs = o.idleMs ?? 2 * 3600_000;
    this.#maxAgeMs = o.maxAgeMs ?? 24 * 3600_000;
    this.#maxSessions = o.maxSessions ?? 16;
    this.#n = o.scryptN ?? 1 << 15;
    this.#now = o.now ?? Date.now;
    this.#sweepMs = o.sweepMs;
    this.limiter = new FailureLimiter(o.perClientFailures ?? 5, o.globalFailures ?? 30, o.windowMs ?? 60_000, this.#now);
    this.#sessions = this.#load();
  }

  get firstBootSecretRequired(): boolean {
    return this.#secret !== undefined;
  }

  isSetUp(): boolean {
    const h = this.#kv.get(KEY_HASH);
    return typeof h === 'string' && h.length > 0;
  }

  #throttle(client: string): void {
    const wait = this.limiter.retryAfter(client);
    if (wait > 0) {
      throw new DuocellError('DC_WEB_RATE_LIMITED', `too many failed attempts: retry in ${Math.ceil(wait / 1000)} s`, {
        retryAfterS: Math.ceil(wait / 1000),
      });
    }
  }

  /** First boot: set the admin password (and present the board's secret if it has one). */
  async setup(password: unknown, secret: unknown, client: string): Promise<Login> {
    if (this.isSetUp() || this.#settingUp) throw new DuocellError('DC_WEB_ALREADY_SET_UP');
    this.#throttle(client);
    if (this.#secret !== undefined && !safeEqual(typeof secret === 'string' ? (normalizeSecret(secret) ?? secret) : undefined, this.#secret)) {
      this.limiter.fail(client);
      log.warn({ client }, 'first-boot set-up with a wrong secret');
      throw new DuocellError('DC_WEB_FIRST_BOOT_SECRET');
    }
    const pw = checkPasswordRules(password);
    this.#settingUp = true;
    try {
      const hash = await hashPassword(pw, this.#n);
      if (this.isSetUp()) throw new DuocellError('DC_WEB_ALREADY_SET_UP');
      this.#kv.set(KEY_HASH, hash);
    } finally {
      this.#settingUp = false;
    }
    log.info({ client }, 'admin password set (first boot)');
    this.#onSetUp?.();
    return this.#open();
  }

  async login(password: unknown, client: string): Promise<Login> {
    if (!this.isSetUp()) throw new DuocellError('DC_WEB_NOT_SET_UP');
    this.#throttle(client);
    const ok = typeof password === 'string' && password.length <= PASSWORD_MAX && (await verifyPassword(password, this.#kv.get(KEY_HASH)!));
    if (!ok) {
      this.limiter.fail(client);
      failureLog.warn('DC_WEB_BAD_CREDENTIALS', { client }, 'failed admin login');
      throw new DuocellError('DC_WEB_BAD_CREDENTIALS');
    }
    this.limiter.clear(client);
    log.info({ client }, 'admin logged in');
    return this.#open();
  }

  /**
   * Listen for ended sessions (ids as sessionId() gives them); returns the unsubscribe function.
   * Called synchronously when a session ends, before the request that ended it is answered.
   */
  onSessionsEnded(fn: (ids: readonly string[], why: SessionEndReason) => void): () => void {
    this.#onEnd.add(fn);
    return () => this.#onEnd.delete(fn);
  }

  /** The id a session token is known by (its digest: the token itself is never kept). */
  sessionId(token: string | undefined): string | undefined {
    if (typeof token !== 'string' || token.length === 0 || token.length > 128) return undefined;
    return digest(token);
  }

  /** End the sessions past their idle or absolute expiry now (the server calls it on a timer). */
  sweep(): number {
    const now = this.#now();
    const gone: string[] = [];
    for (const [k, s] of this.#sessions) {
      if (now - s.seen > this.#idleMs || now - s.created > this.#maxAgeMs) gone.push(k);
    }
    if (gone.length === 0) return 0;
    for (const k of gone) this.#sessions.delete(k);
    this.#save();
    this.#ended(gone, 'expired');
    return gone.length;
  }

  /** The shortest time after which a sweep may find something to end (for the timer). */
  get sweepMs(): number {
    return this.#sweepMs ?? Math.max(1000, Math.min(60_000, this.#idleMs / 4));
  }

  #ended(ids: readonly string[], why: SessionEndReason): void {
    if (ids.length === 0) return;
    for (const fn of this.#onEnd) {
      try {
        fn(ids, why);
      } catch (e) {
        log.warn({ err: e }, 'a session-end listener failed');
      }
    }
  }

  async changePassword(token: string, current: unknown, next: unknown, client: string): Promise<Login> {
    if (this.session(token) === undefined) throw new DuocellError('DC_WEB_AUTH_REQUIRED');
    this.#throttle(client);
    const ok = typeof current === 'string' && current.length <= PASSWORD_MAX && (await verifyPassword(current, this.#kv.get(KEY_HASH)!));
    if (!ok) {
      this.limiter.fail(client);
      throw new DuocellError('DC_WEB_BAD_CREDENTIALS', 'the current password is wrong');
    }
    const pw = checkPasswordRules(next);
    this.#kv.set(KEY_HASH, await hashPassword(pw, this.#n));
    // Every other session ends with the old password (this one too: a new one is opened).
    const ended = [...this.#sessions.keys()];
    this.#sessions.clear();
    this.#ended(ended, 'password-changed');
    log.info({ client }, 'admin password changed; all sessions closed');
    return this.#open();
  }

  /** The live session for a cookie token, sliding its idle expiry; undefined if none. */
  session(token: string | undefined): SessionRecord | undefined {
    if (typeof token !== 'string' || token.length === 0 || token.length > 128) return undefined;
    const id = digest(token);
    const s = this.#sessions.get(id);
    if (s === undefined) return undefined;
    const now = this.#now();
    if (now - s.seen > this.#idleMs || now - s.created > this.#maxAgeMs) {
      this.#sessions.delete(id);
      this.#save();
      this.#ended([id], 'expired');
      return undefined;
    }
    // Persist the sliding expiry at most once a minute.
    if (now - s.seen > 60_000) {
      s.seen = now;
      this.#save();
    } else {
      s.seen = now;
    }
    return s;
  }

  logout(token: string | undefined): void {
    if (typeof token !== 'string') return;
    const id = digest(token);
    if (this.#sessions.delete(id)) {
      this.#save();
      this.#ended([id], 'logout');
    }
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  #open(): Login {
    const token = newToken();
    const now = this.#now();
    const rec: SessionRecord = { csrf: newToken(), created: now, seen: now };
    // Drop expired sessions, then the oldest past the cap.
    const expired: string[] = [];
    for (const [k, s] of this.#sessions) {
      if (now - s.seen > this.#idleMs || now - s.created > this.#maxAgeMs) {
        this.#sessions.delete(k);
        expired.push(k);
      }
    }
    const evicted: string[] = [];
    while (this.#sessions.size >= this.#maxSessions) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
      evicted.push(oldest);
    }
    this.#ended(expired, 'expired');
    this.#ended(evicted, 'evicted');
    this.#sessions.set(digest(token), rec);
    this.#save();
    return { token, csrf: rec.csrf };
  }

  #load(): Map<string, SessionRecord> {
    const m = new Map<string, SessionRecord>();
    const raw = this.#kv.get(KEY_SESSIONS);
    if (raw === undefined || raw === '') return m;
    try {
      const o = JSON.parse(raw) as unknown;
      if (o !== null && typeof o === 'object') {
        for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
          const s = v as Partial<SessionRecord>;
          if (/^[0-9a-f]{64}$/.test(k) && typeof s.csrf === 'string' && typeof s.created === 'number' && typeof s.seen === 'number') {
            m.set(k, { csrf: s.csrf, created: s.created, seen: s.seen });
          }
        }
      }
    } catch (e) {
      log.warn({ err: e }, 'stored web sessions unreadable; starting with none');
    }
    return m;
  }

  #save(): void {
    this.#kv.set(KEY_SESSIONS, JSON.stringify(Object.fromEntries(this.#sessions)));
  }
}

/** An in-memory KeyValueStore (tests, the stand-alone dev server). */
export function memoryKv(init: Record<string, string> = {}): KeyValueStore & { readonly data: Map<string, string> } {
  const data = new Map(Object.entries(init));
  return {
    data,
    get: (k) => data.get(k),
    set: (k, v) => void data.set(k, v),
  };
}
