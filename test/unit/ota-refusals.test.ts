import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/index.js';
import { OtaService, makeEnvelope, BUNDLE_FORMAT } from '../../src/ota/index.js';
import { isDuocellError } from '../../src/core/errors.js';
import { OPERATOR, STRANGER, synthSet, fullDoc, signed } from './ota-fixtures.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-ota-ref-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'applied';
  } catch (e) {
    return isDuocellError(e) ? e.code : `not a DuocellError: ${String(e)}`;
  }
}

t.test('every refusal has its own code, and nothing is written', async (t) => {
  const store = await Store.open({ dir: tmp });
  t.teardown(() => store.close());
  const ota = new OtaService({ store, boardKeys: [OPERATOR.publicB64], cellId: 'cell-7' });
  t.equal(codeOf(() => ota.apply(signed(fullDoc(5, synthSet(3, 'base'))), 'cli')), 'applied', 'a good bundle applies');
  const digest = store.policyDigest();
  const audits = store.listAudit({ limit: 1000 }).length;

  const good = fullDoc(6, synthSet(2, 'new'));
  const goodText = JSON.stringify(good);
  const sig = JSON.parse(signed(goodText)).signatures as Array<{ sig: string; keyId: string }>;
  const flipped = Buffer.from(sig[0]!.sig, 'base64');
  flipped[10] ^= 1;
  const iso = (ms: number): string => new Date(Date.now() + ms).toISOString();

  const cases: Array<[string, string | Buffer, string]> = [
    ['not JSON', '{"document": ', 'DC_OTA_MALFORMED'],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'DC_OTA_MALFORMED'],
    ['empty', '', 'DC_OTA_MALFORMED'],
    ['array', '[]', 'DC_OTA_MALFORMED'],
    ['document not a string', JSON.stringify({ document: good, signatures: sig }), 'DC_OTA_MALFORMED'],
    ['unknown envelope field', JSON.stringify({ document: goodText, signatures: sig, x: 1 }), 'DC_OTA_MALFORMED'],
    ['signature not 64 bytes', JSON.stringify({ document: goodText, signatures: [{ alg: 'ed25519', sig: 'AAAA' }] }), 'DC_OTA_MALFORMED'],
    ['other algorithm', JSON.stringify({ document: goodText, signatures: [{ ...sig[0], alg: 'rsa' }] }), 'DC_OTA_MALFORMED'],
    ['unsigned envelope', makeEnvelope(goodText, []), 'DC_OTA_UNSIGNED'],
    ['bare document', goodText, 'DC_OTA_UNSIGNED'],
    ['envelope without signatures field', JSON.stringify({ document: goodText }), 'DC_OTA_UNSIGNED'],
    ['signed by an untrusted key', signed(good, STRANGER.privatePem), 'DC_OTA_UNTRUSTED_KEY'],
    ['bad signature (one bit flipped)', makeEnvelope(goodText, [{ ...sig[0]!, alg: 'ed25519', sig: flipped.toString('base64') }]), 'DC_OTA_BAD_SIGNATURE'],
    ['document changed after signing', makeEnvelope(goodText.replace('"version":6', '"version":7'), [{ ...sig[0]!, alg: 'ed25519' }]), 'DC_OTA_BAD_SIGNATURE'],
    ['signed but not JSON', signed('hello'), 'DC_OTA_SCHEMA_INVALID'],
    ['signed but schema-invalid (unknown field)', signed({ ...good, extra: true } as never), 'DC_OTA_SCHEMA_INVALID'],
    ['signed but schema-invalid (bad prefix)', signed(fullDoc(6, { ...synthSet(1, 'n'), subscribers: [{ name: 'x', addresses: ['10.0.0.0/99'] }] })), 'DC_OTA_SCHEMA_INVALID'],
    ['signed but schema-invalid (wrong format)', signed({ ...good, format: 'other/1' }), 'DC_OTA_SCHEMA_INVALID'],
    ['signed but schema-invalid (version 1.5)', signed({ ...good, version: 1.5 }), 'DC_OTA_SCHEMA_INVALID'],
    ['signed but schema-invalid (subscriber name)', signed(fullDoc(6, { ...synthSet(1, 'n'), subscribers: [{ name: '$(reboot)' }] })), 'DC_OTA_SCHEMA_INVALID'],
    ['unknown policy', signed(fullDoc(6, { ...synthSet(1, 'n'), subscribers: [{ name: 'x', policy: 'nope' }] })), 'DC_OTA_CONTENT_INVALID'],
    ['identifier claimed twice', signed(fullDoc(6, { ...synthSet(1, 'n'), subscribers: [{ name: 'x', addresses: ['10.0.0.1'] }, { name: 'y', addresses: ['10.0.0.1/32'] }] })), 'DC_OTA_CONTENT_INVALID'],
    ['ratio not summing to 100', signed(fullDoc(6, { ...synthSet(1, 'n'), policies: [{ name: 'p', ratio: { cellular: 10, wlan: 10 } }] })), 'DC_OTA_CONTENT_INVALID'],
    ['expired', signed({ ...good, issuedAt: iso(-86_400_000), expiresAt: iso(-1000) }), 'DC_OTA_EXPIRED'],
    ['issued in the future', signed({ ...good, issuedAt: iso(86_400_000) }), 'DC_OTA_NOT_YET_VALID'],
    ['foreign target', signed({ ...good, target: { cells: ['cell-1', 'cell-2'] } }), 'DC_OTA_FOREIGN_TARGET'],
    ['older version', signed(fullDoc(4, synthSet(1, 'n'))), 'DC_OTA_ROLLBACK'],
    ['equal version', signed(fullDoc(5, synthSet(1, 'n'))), 'DC_OTA_ROLLBACK'],
    ['delta against another base', signed({ format: BUNDLE_FORMAT, version: 7, issuedAt: iso(-1000), target: 'all', kind: 'delta', base: 4 } as never), 'DC_OTA_BASE_MISMATCH'],
    ['delta naming a policy the box lacks', signed({ format: BUNDLE_FORMAT, version: 7, issuedAt: iso(-1000), target: 'all', kind: 'delta', base: 5, upsert: { subscribers: [{ name: 'z', policy: 'ghost' }] } } as never), 'DC_OTA_CONTENT_INVALID'],
  ];
  for (const [what, input, code] of cases) {
    t.equal(codeOf(() => ota.apply(input, 'push')), code, what);
    t.equal(ota.status().lastError?.code, code, `${what}: status shows the last error`);
  }
  t.equal(store.policyDigest(), digest, 'policy untouched by every refusal');
  t.equal(store.listAudit({ limit: 1000 }).length, audits, 'no audit row for a refusal');
  t.equal(store.otaState().currentVersion, 5);

  t.equal(codeOf(() => ota.apply(signed({ ...good, target: { cells: ['cell-7'] } }), 'push')), 'applied', 'own cell listed: applies');
  t.equal(store.otaState().currentVersion, 6);
  t.equal(ota.status().lastError, null);
});
