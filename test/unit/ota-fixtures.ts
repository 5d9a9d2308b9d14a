/**
 * Bundles for tests, the fuzzer and the benchmark: synthetic policy sets, documents, signing.
 * Not a test file itself (no .test.ts).
 */
import { generateKeyPair, parsePrivateKey, signDocument, makeEnvelope, BUNDLE_FORMAT, type BundleDocument } from '../../src/ota/index.js';
import type { PolicySet } from '../../src/store/index.js';

export const OPERATOR = generateKeyPair();
export const STRANGER = generateKeyPair();

/** `n` subscribers named `TAG-i`, each with an IPv4 host, an IPv6 /64 and a MAC; three policies. */
export function synthSet(n: number, tag: string, o: { credentials?: boolean } = {}): PolicySet {
  const policies = [
    { name: 'default', maxSessionsPerUe: 32 },
    { name: `${tag}-gold`, maxSessionsPerUe: 64, steeringMode: 'ratio' as const, ratio: { cellular: 30, wlan: 70 }, allowedNetworks: ['10.0.0.0/8', '2001:db8::/32'] },
    { name: `${tag}-basic`, maxSubflowsPerSession: 2, steeringMode: 'active-standby' as const, interceptPorts: [80, 443, 8080] },
  ];
  const subscribers = [];
  for (let i = 0; i < n; i++) {
    const mac = (0x020000000000 + i).toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
    subscribers.push({
      name: `${tag}-${i}`,
      policy: i % 3 === 0 ? `${tag}-gold` : i % 3 === 1 ? `${tag}-basic` : null,
      addresses: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`],
      macs: [mac],
      ...(o.credentials && i % 10 === 0 ? { credential: 'scrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' } : {}),
    });
  }
  return {
    policies,
    subscribers,
    nserverLimits: [{ prefix: '198.51.100.0/24', maxSessions: 10 }],
    proxies: [{ address: '192.0.2.1', port: 5124, protocol: 'convert', priority: 1 }],
  };
}

export function fullDoc(version: number, set: PolicySet, extra: Partial<BundleDocument> = {}): BundleDocument {
  return {
    format: BUNDLE_FORMAT,
    version,
    issuedAt: new Date(Date.now() - 60_000).toISOString(),
    target: 'all',
    kind: 'full',
    policy: set,
    ...extra,
  } as BundleDocument;
}

/** Sign the exact text of `doc` (object → JSON.stringify) with a private key (default: OPERATOR). */
export function signed(doc: BundleDocument | string, privatePem: string = OPERATOR.privatePem): string {
  const text = typeof doc === 'string' ? doc : JSON.stringify(doc);
  return makeEnvelope(text, [signDocument(text, parsePrivateKey(privatePem))]);
}
