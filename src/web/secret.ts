import { randomBytes } from 'node:crypto';
import { DuocellError } from '../core/errors.js';

/**
 * The first-boot set-up secret's format: 16 characters of RFC 4648 base32 (80 random bits) in
 * four groups of four, e.g. `K7QD-2MXA-P4RT-ZB6N`, easy to read off a console and to type.
 * Typed input is compared after normalising: case, spaces and dashes do not matter, and the
 * look-alikes 0/1/8 (not in the alphabet) are read as O/I/B.
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export const SECRET_CHARS = 16;

export function generateSetupSecret(random: (n: number) => Buffer = randomBytes): string {
  const bytes = random(10); // 80 bits = 16 base32 characters exactly
  if (bytes.length !== 10) throw new DuocellError('DC_INTERNAL', 'random source returned the wrong length');
  let bits = 0;
  let acc = 0;
  let out = '';
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  return formatSecret(out);
}

/** `ABCDEFGHIJKLMNOP` → `ABCD-EFGH-IJKL-MNOP`. */
export function formatSecret(s: string): string {
  return (normalizeSecret(s) ?? '').replace(/(.{4})(?=.)/g, '$1-');
}

/**
 * The canonical form of a typed secret (16 alphabet characters, upper case), or undefined when
 * it cannot be one (wrong length, other characters): such input never matches.
 */
export function normalizeSecret(input: unknown): string | undefined {
  if (typeof input !== 'string' || input.length > 64) return undefined;
  const s = input
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/0/g, 'O')
    .replace(/1/g, 'I')
    .replace(/8/g, 'B');
  if (s.length !== SECRET_CHARS) return undefined;
  for (const c of s) if (!ALPHABET.includes(c)) return undefined;
  return s;
}
