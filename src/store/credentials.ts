import { randomBytes, scrypt, timingSafeEqual, createHash } from 'node:crypto';
import { DuocellError } from '../core/errors.js';

/**
 * Password hashing with scrypt (node:crypto). Stored form:
 *   scrypt$N$r$p$<salt base64>$<hash base64>
 * Verification uses the parameters in the stored string, so they can be raised later.
 */

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** ~50 ms on a Raspberry Pi 4 class core; tests may lower it. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 16384, r: 8, p: 1 };
const KEYLEN = 32;
export const MAX_PASSWORD = 1024;

function derive(password: string, salt: Buffer, prm: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEYLEN, { N: prm.N, r: prm.r, p: prm.p, maxmem: 256 * prm.N * prm.r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export async function hashPassword(password: string, prm: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  if (typeof password !== 'string' || password.length === 0 || password.length > MAX_PASSWORD) {
    throw new DuocellError('DC_STORE_INVALID', `password: expected 1..${MAX_PASSWORD} characters`);
  }
  const salt = randomBytes(16);
  const key = await derive(password, salt, prm);
  return `scrypt$${prm.N}$${prm.r}$${prm.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True if `password` matches the stored hash. A malformed stored hash never matches. */
export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  if (typeof stored !== 'string' || typeof password !== 'string' || password.length > MAX_PASSWORD) return false;
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (m === null) return false;
  const prm = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (prm.N < 2 || prm.N > 1 << 20 || (prm.N & (prm.N - 1)) !== 0 || prm.r < 1 || prm.r > 32 || prm.p < 1 || prm.p > 16) return false;
  const want = Buffer.from(m[5]!, 'base64');
  if (want.length !== KEYLEN) return false;
  try {
    const got = await derive(password, Buffer.from(m[4]!, 'base64'), prm);
    return timingSafeEqual(got, want);
  } catch {
    return false;
  }
}

/** Lookup key of a Convert/session cookie: its SHA-256, so the store never holds the cookie. */
export function cookieDigest(cookie: Buffer): string {
  return createHash('sha256').update(cookie).digest('hex');
}
