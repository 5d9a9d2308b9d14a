import t from 'tap';
import { Intercept, type InterceptNft } from '../../src/services/intercept/index.js';

// The intercept service against an injected nft: what it applies at start, what it removes at
// stop, and the M-server set it keeps. No nft binary, no root.

function fakeNft(fail = false) {
  const calls: string[] = [];
  const set: Array<{ address: string; port: number }> = [];
  const nft: InterceptNft = {
    async applyRuleset(text, _check, opts) {
      calls.push(opts?.quiet === true ? 'renew' : 'apply');
      if (fail) throw new Error('nft refused');
      if (!text.includes('table inet')) throw new Error('not a ruleset');
    },
    async deleteTable(family, name) { calls.push(`delete ${family} ${name}`); },
    async ensureLocalDelivery(mark, table) { calls.push(`route+ ${mark} ${table}`); },
    async removeLocalDelivery(mark, table) { calls.push(`route- ${mark} ${table}`); },
    async addAddrPortElement(_f, _t, s, address, port, timeoutS) { calls.push(`add ${s} ${address}:${port} ${timeoutS}`); set.push({ address, port }); },
    async renewTimeoutPorts(_f, _t, s, ports, ms) { calls.push(`renew ${s} ${ports.join(',')} ${ms}`); if (fail) throw new Error('nft refused'); },
    async flushSet(_f, _t, s) { calls.push(`flush ${s}`); set.length = 0; },
    async listSetJson(_f, _t, s) { return s === 'mservers4' ? [...set] : []; },
  };
  return { nft, calls };
}

const opts = { table: 'dctest', lanInterfaces: ['lan0'], ports: [{ port: 8000, claim: 'mptcp' as const }], mark: 1, synRate: 10, synBurst: 20, perSourceMax: 5, routeTable: 100, mserverTtlS: 60, livenessMs: 0 };

t.test('start applies the ruleset and the local route; stop removes both', async (t) => {
  const { nft, calls } = fakeNft();
  const i = new Intercept(opts, nft);
  await i.stop();
  t.same(calls, [], 'stop before start does nothing');
  await i.start();
  t.same(calls, ['apply', 'route+ 1 100']);
  await i.rememberMServer('::ffff:192.0.2.9', 443);
  t.same(calls.at(-1), 'add mservers4 192.0.2.9:443 60', 'v4-mapped address stored as IPv4 with the TTL');
  t.same(await i.listMServers(), [{ address: '192.0.2.9', port: 443 }]);
  await i.flushMServers();
  t.same(await i.listMServers(), []);
  await i.stop();
  t.same(calls.slice(-2), ['delete inet dctest', 'route- 1 100']);
});

t.test('a refused ruleset fails start and installs no route', async (t) => {
  const { nft, calls } = fakeNft(true);
  await t.rejects(new Intercept(opts, nft).start(), /nft refused/);
  t.same(calls, ['apply']);
});

t.test('bad options are refused before any nft call', async (t) => {
  const { nft, calls } = fakeNft();
  t.throws(() => new Intercept({ ...opts, lanInterfaces: ['lan0; drop'] }, nft), { code: 'DC_CONFIG_INVALID' });
  t.same(calls, []);
});
