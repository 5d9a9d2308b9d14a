import t, { type Test } from 'tap';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { boardDir, boardSchema, checkSchema, decodeEd25519, loadBoard, PROBE_METHODS, trustedOtaKeys, validateBoard } from '../../src/core/board.js';
import { isDuocellError } from '../../src/core/errors.js';

const dir = boardDir();
const profiles = fs.readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'schema.json');

t.test('the shipped profiles are there', async (t) => {
  for (const n of ['sim', 'concentrator-sim', 'rpi4-ec25', 'rpi5-rm520n', 'openwrt-generic']) {
    t.ok(profiles.includes(`${n}.json`), `board/${n}.json exists`);
  }
});

t.test('every profile validates and its name is its file name', async (t) => {
  for (const f of profiles) {
    const b = loadBoard(f.replace(/\.json$/, ''));
    t.equal(b.name, f.replace(/\.json$/, ''), `${f}: name`);
    t.same(checkSchema(boardSchema(), JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))), [], `${f}: schema`);
  }
});

t.test('sim keeps the names the simulated board relies on', async (t) => {
  const b = loadBoard('sim');
  t.equal(b.preset, 'cell');
  t.same(
    b.uplinks.map((u) => [u.access, u.interface]),
    [
      ['cellular', 'wwan0'],
      ['wlan', 'wlan0'],
    ],
  );
  t.ok(b.lan.interfaces.includes('lan0'), 'LAN lan0');
  t.ok(b.web.listen.some((l) => l.host === '127.0.0.1' && l.port === 8080), 'web page on 127.0.0.1:8080');
  t.equal(loadBoard('concentrator-sim').preset, 'concentrator');
});

t.test('rpi4-ec25: Quectel EC25 ids and ports', async (t) => {
  const b = loadBoard('rpi4-ec25');
  t.ok(b.modem?.usb?.some((u) => u.vendor === '2c7c' && u.product === '0125'));
  t.equal(b.modem?.ports?.at?.usbInterface, 2);
  t.equal(b.modem?.ports?.at?.path, '/dev/ttyUSB2');
  t.equal(b.modem?.ports?.qmi?.path, '/dev/cdc-wdm0');
  t.equal(b.modem?.ports?.net?.name, 'wwan0');
  t.same(b.lan.interfaces, ['eth0']);
  t.ok(b.web.listen.some((l) => l.host === '192.168.225.1'), 'web page on the LAN address');
  const r5 = loadBoard('rpi5-rm520n');
  t.ok(r5.modem?.usb?.some((u) => u.vendor === '2c7c' && u.product === '0801'));
});

t.test('trusted OTA keys are usable Ed25519 keys (hex and base64)', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
  for (const text of [raw.toString('hex'), raw.toString('base64')]) {
    t.same(decodeEd25519(text), raw);
    const [k] = trustedOtaKeys({ ota: { trustedKeys: [{ id: 'x', ed25519: text }] } });
    const msg = Buffer.from('bundle');
    t.ok(verify(null, msg, k!.key, sign(null, msg, privateKey)), 'a signature by the private key verifies');
  }
  for (const f of profiles) t.ok(trustedOtaKeys(loadBoard(path.join(dir, f))).length >= 1, `${f} trusts a key`);
  // The sim's dev key pair: the private half in board/keys signs what the sim trusts.
  const pem = fs.readFileSync(path.join(dir, 'keys/sim-ota-dev.pem'), 'utf8');
  const [simKey] = trustedOtaKeys(loadBoard('sim'));
  t.ok(verify(null, Buffer.from('x'), simKey!.key, sign(null, Buffer.from('x'), pem)), 'sim dev key pair matches');
});

function rejects(t: Test, doc: unknown, match: RegExp, what: string): void {
  try {
    validateBoard(doc);
    t.fail(`${what}: accepted`);
  } catch (e) {
    t.ok(isDuocellError(e, 'DC_CONFIG_INVALID'), `${what}: DC_CONFIG_INVALID`);
    t.match((e as Error).message, match, `${what}: message names the field`);
  }
}

t.test('bad profiles are rejected with DC_CONFIG_INVALID and the field path', async (t) => {
  const good = JSON.parse(fs.readFileSync(path.join(dir, 'rpi4-ec25.json'), 'utf8')) as Record<string, any>;
  const mut = (f: (d: Record<string, any>) => void): unknown => {
    const d = structuredClone(good);
    f(d);
    return d;
  };
  rejects(t, 'nope', /JSON object/, 'not an object');
  rejects(t, mut((d) => delete d.preset), /board\.preset: required/, 'missing preset');
  rejects(t, mut((d) => (d.preset = 'router')), /board\.preset: expected one of/, 'bad preset');
  rejects(t, mut((d) => (d.uplinks[0].interface = 'a-very-long-interface-name')), /uplinks\[0\]\.interface/, 'interface name too long');
  rejects(t, mut((d) => (d.uplinks[1].interface = 'wwan0')), /already used/, 'duplicate interface');
  rejects(t, mut((d) => (d.web.listen[0].port = 70000)), /web\.listen\[0\]\.port: expected <= 65535/, 'port out of range');
  rejects(t, mut((d) => (d.web.listen[0].host = 'localhost')), /not a numeric address/, 'host name instead of address');
  rejects(t, mut((d) => (d.modem.usb[0].vendor = '2c7')), /modem\.usb\[0\]\.vendor/, 'bad USB id');
  rejects(t, mut((d) => delete d.modem.usb), /modem\.usb: required to find ports/, 'ports by USB interface without ids');
  rejects(t, mut((d) => delete d.modem), /board\.modem: required/, 'cellular uplink without modem');
  rejects(t, mut((d) => (d.ota.trustedKeys[0].ed25519 = 'abcd')), /trustedKeys\[0\]\.ed25519/, 'short key');
  rejects(t, mut((d) => (d.lan.addresses = ['192.168.1.1/33'])), /prefix length 33/, 'bad prefix');
  rejects(t, mut((d) => (d.ledz = [])), /board\.ledz: unknown field/, 'unknown top-level field');
  rejects(t, mut((d) => (d.modem.apn.ipType = 'ipx')), /apn\.ipType/, 'bad APN type');
  rejects(t, mut((d) => (d.uplinks = [])), /at least one uplink/, 'cell without uplinks');
  rejects(t, mut((d) => (d.uplinks[0].probe = { method: 'tcp' })), /uplinks\[0\]\.probe\.method: expected one of/, 'unknown probe method');
  rejects(t, mut((d) => (d.uplinks[0].probe = { method: 'icmp', port: 7 })), /uplinks\[0\]\.probe\.port: ICMP echo has no port/, 'a port for ICMP');
  rejects(t, mut((d) => (d.uplinks[0].probe = { method: 'icmp', address: 'gw.example' })), /uplinks\[0\]\.probe\.address: .* not a numeric address/, 'probe target by name');
});

t.test('loadBoard: missing file and broken JSON', async (t) => {
  t.throws(() => loadBoard('no-such-board'), { code: 'DC_CONFIG_INVALID' });
  const tmp = fs.mkdtempSync('/tmp/dc-board-');
  fs.writeFileSync(path.join(tmp, 'x.json'), '{ nope');
  t.throws(() => loadBoard(path.join(tmp, 'x.json')), { code: 'DC_CONFIG_INVALID' });
  fs.rmSync(tmp, { recursive: true });
});

t.test('the schema uses only the keywords the validator implements', async (t) => {
  t.doesNotThrow(() => checkSchema(boardSchema(), {}));
  t.throws(() => checkSchema({ oneOf: [] } as never, {}), { code: 'DC_INTERNAL' });
  t.same(checkSchema({ type: 'string', maxLength: 3 }, 'abcd'), ['board: expected at most 3 character(s)']);
  t.same(checkSchema({ type: 'array', maxItems: 1 }, [1, 2]), ['board: expected at most 1 item(s)']);
  t.same(checkSchema({ type: 'string', maxLength: 3 }, 'abc'), []);
});

t.test('probe methods: the schema and the type say the same; the real boards ping their gateways', async (t) => {
  const up = (boardSchema().properties as any).uplinks.items.properties.probe.properties.method;
  t.same([...up.enum].sort(), [...PROBE_METHODS].sort(), 'board/schema.json probe.method enum = PROBE_METHODS');
  for (const n of ['rpi4-ec25', 'rpi5-rm520n', 'openwrt-generic']) {
    const b = loadBoard(n);
    for (const u of b.uplinks) t.same(u.probe, { method: 'icmp' }, `${n}: ${u.name} probed by ICMP echo to its gateway (no address: the gateway; default rate 1/s)`);
  }
  t.same(
    loadBoard('sim').uplinks.map((u) => u.probe),
    [undefined, undefined],
    'sim: left unprobed on purpose (see docs/board.md, "Path probes")',
  );
});

t.test('mueRadioAddresses: a boolean, on a cell only', async (t) => {
  const good = JSON.parse(fs.readFileSync(path.join(dir, 'rpi4-ec25.json'), 'utf8')) as Record<string, any>;
  t.equal(validateBoard({ ...good, mueRadioAddresses: true }).mueRadioAddresses, true, 'a cell may turn it on');
  rejects(t, { ...good, mueRadioAddresses: 'yes' }, /mueRadioAddresses/, 'not a boolean');
  const conc = JSON.parse(fs.readFileSync(path.join(dir, 'concentrator-sim.json'), 'utf8')) as Record<string, any>;
  rejects(t, { ...conc, mueRadioAddresses: true }, /mueRadioAddresses: only a cell/, 'a concentrator');
});

t.test('joinDnat: a boolean, on a cell only, never with mueRadioAddresses', async (t) => {
  const good = JSON.parse(fs.readFileSync(path.join(dir, 'rpi4-ec25.json'), 'utf8')) as Record<string, any>;
  t.equal(validateBoard({ ...good, joinDnat: false }).joinDnat, false, 'a cell may turn it off');
  rejects(t, { ...good, joinDnat: 'no' }, /joinDnat/, 'not a boolean');
  rejects(t, { ...good, joinDnat: true, mueRadioAddresses: true }, /joinDnat: not with mueRadioAddresses/, 'not both');
  t.equal(validateBoard({ ...good, joinDnat: false, mueRadioAddresses: true }).mueRadioAddresses, true, 'off with mueRadioAddresses is fine');
  const conc = JSON.parse(fs.readFileSync(path.join(dir, 'concentrator-sim.json'), 'utf8')) as Record<string, any>;
  rejects(t, { ...conc, joinDnat: true }, /joinDnat: only a cell/, 'a concentrator');
});
