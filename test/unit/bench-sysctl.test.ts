import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSysctlConf, pmModeOf, shippedNodeFlags, SHIPPED_SYSCTL } from '../../bench/sysctl.js';

t.test('sysctl.d syntax', async (t) => {
  const s = parseSysctlConf('# c\n; c\n\nnet.a.b = 1\n-net/c/d=2 3\n  kernel.x =  y  z \n');
  t.same(s, [
    { key: 'net.a.b', value: '1', optional: false },
    { key: 'net.c.d', value: '2 3', optional: true },
    { key: 'kernel.x', value: 'y z', optional: false },
  ]);
  t.throws(() => parseSysctlConf('net.a.b\n', 'f.conf'), { code: 'DC_CONFIG_INVALID', message: /f.conf:1: not "key = value"/ });
  t.throws(() => parseSysctlConf('net.a.b =\n'), { code: 'DC_CONFIG_INVALID', message: /has no value/ });
  t.throws(() => parseSysctlConf('net.$(x) = 1\n'), { code: 'DC_CONFIG_INVALID', message: /bad sysctl key/ });
});

t.test('the shipped file chooses the userspace path manager and a small unsent queue', async (t) => {
  const s = parseSysctlConf(fs.readFileSync(SHIPPED_SYSCTL, 'utf8'));
  t.equal(pmModeOf(s), 'userspace');
  t.ok(s.some((x) => x.key === 'net.ipv4.tcp_notsent_lowat'));
  t.equal(pmModeOf([{ key: 'net.mptcp.pm_type', value: '0', optional: false }]), 'kernel');
  t.equal(pmModeOf([{ key: 'net.mptcp.path_manager', value: 'userspace', optional: false }]), 'userspace');
});

t.test("the benchmarked proxy gets the shipped unit's node flags", async (t) => {
  t.same(shippedNodeFlags(), ['--max-semi-space-size=4'], 'the shipped unit: a 4 MiB young generation');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-mem-unit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const unit = path.join(dir, 'u.service');
  fs.writeFileSync(unit, '[Service]\nExecStart=/usr/bin/node /usr/lib/duocell/bin/duocell.js run --board x --max-old\n');
  t.same(shippedNodeFlags(unit), [], 'no flag before the script: none (a flag of the script is not node\'s)');
  fs.writeFileSync(unit, '[Service]\nExecStart=/usr/bin/socat x y\n');
  t.throws(() => shippedNodeFlags(unit), { code: 'DC_CONFIG_INVALID' });
});
