import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { DuocellError } from '../core/errors.js';

/**
 * Ed25519 keys for bundles (node:crypto). A public key is written as the base64 of its 32 raw
 * bytes (what board profiles and `duocell ota keys add` carry) or as SPKI PEM; a private key as
 * PKCS#8 PEM. A key's id is the first 16 hex digits of SHA-256 over the raw public key.
 */

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex'); // SPKI header of an Ed25519 key

export interface TrustedKey {
  keyId: string;
  key: KeyObject;
  /** where it came from: `board`, `store`, `flag` */
  source: string;
}

export function rawPublicKey(k: KeyObject): Buffer {
  const der = (k.type === 'private' ? createPublicKey(k) : k).export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

export function keyIdOf(k: KeyObject): string {
  return createHash('sha256').update(rawPublicKey(k)).digest('hex').slice(0, 16);
}

/** Parse a public key given as raw 32 bytes in base64 or hex, base64 SPKI DER, or PEM. */
export function parsePublicKey(text: string): KeyObject {
  const bad = (why: string): never => {
    throw new DuocellError('DC_OTA_KEY_INVALID', `public key: ${why}`);
  };
  if (typeof text !== 'string' || text.length > 4096) bad('expected text');
  const t = text.trim();
  let k: KeyObject;
  try {
    if (t.startsWith('-----BEGIN')) {
      k = t.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(t)) : createPublicKey(t);
    } else {
      const hex = /^[0-9a-fA-F]{64}$/.test(t);
      if (!hex && !/^[A-Za-z0-9+/]+={0,2}$/.test(t)) bad('expected base64, 64 hex digits or PEM');
      const b = Buffer.from(t, hex ? 'hex' : 'base64');
      const der = b.length === 32 ? Buffer.concat([SPKI_PREFIX, b]) : b;
      k = createPublicKey({ key: der, format: 'der', type: 'spki' });
    }
  } catch (e) {
    if (e instanceof DuocellError) throw e;
    return bad((e as Error).message);
  }
  if (k.asymmetricKeyType !== 'ed25519') bad(`expected an Ed25519 key, got ${k.asymmetricKeyType}`);
  return k;
}

export function parsePrivateKey(pem: string): KeyObject {
  let k: KeyObject;
  try {
    k = createPrivateKey(pem);
  } catch (e) {
    throw new DuocellError('DC_OTA_KEY_INVALID', `private key: ${(e as Error).message}`);
  }
  if (k.asymmetricKeyType !== 'ed25519') throw new DuocellError('DC_OTA_KEY_INVALID', `private key: expected Ed25519, got ${k.asymmetricKeyType}`);
  return k;
}

export function generateKeyPair(): { privatePem: string; publicB64: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicB64: rawPublicKey(publicKey).toString('base64'),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

export function trustedKey(text: string, source: string): TrustedKey {
  const key = parsePublicKey(text);
  return { keyId: keyIdOf(key), key, source };
}

export function signBytes(data: Buffer, privateKey: KeyObject): Buffer {
  return sign(null, data, privateKey);
}

export function verifyBytes(data: Buffer, sig: Buffer, publicKey: KeyObject): boolean {
  try {
    return sig.length === 64 && verify(null, data, publicKey, sig);
  } catch {
    return false;
  }
}

/** The trusted keys a board profile carries (`ota.trustedKeys: [{id, ed25519}]`), as key texts. */
export function boardKeyTexts(board: { ota?: unknown } | undefined): string[] {
  const ota = board?.ota;
  if (typeof ota !== 'object' || ota === null) return [];
  const list = (ota as { trustedKeys?: unknown }).trustedKeys;
  if (!Array.isArray(list)) return [];
  return list.flatMap((k) => (typeof k === 'object' && k !== null && typeof (k as { ed25519?: unknown }).ed25519 === 'string' ? [(k as { ed25519: string }).ed25519] : []));
}

/** The bundle URL a board profile names (`ota.url`), if any. */
export function boardOtaUrl(board: { ota?: unknown } | undefined): string | null {
  const ota = board?.ota;
  const url = typeof ota === 'object' && ota !== null ? (ota as { url?: unknown }).url : undefined;
  return typeof url === 'string' ? url : null;
}
