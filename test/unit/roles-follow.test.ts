// test/helpers/roles.ts followRole: the JSON-lines follower the kernel tests' roles share.
import t from 'tap';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import { followRole } from '../helpers/roles.js';

function fakeChild(): { child: ChildProcess; out: PassThrough; err: PassThrough } {
  const out = new PassThrough();
  const err = new PassThrough();
  const child = Object.assign(new EventEmitter(), { stdout: out, stderr: err }) as unknown as ChildProcess;
  return { child, out, err };
}

t.test('followRole: lines split across chunks, line/next/wait, non-JSON kept with stderr', async (t) => {
  const f = fakeChild();
  const r = followRole(f.child, 'srv');
  const ready = r.line('ready');
  f.out.write('{"rea');
  f.out.write('dy":1}\nnot json\n{"n":1}\n');
  f.err.write('a warning');
  t.same(await ready, { ready: 1 });
  t.same(await r.line('ready'), { ready: 1 }, 'a line already printed');
  const next = r.next('n');
  const big = r.wait((l) => typeof l.n === 'number' && l.n > 1, 'n > 1', 1000);
  f.out.write('{"n":2}\n');
  t.same(await next, { n: 2 }, 'next: not the n printed before');
  t.same(await big, { n: 2 });
  t.equal(r.lines.length, 3);
  t.match(r.stderr(), /not json[\s\S]*a warning/);
  await t.rejects(r.wait(() => false, 'nothing', 20), /srv: timed out waiting for nothing/);
  const never = t.rejects(r.line('never'), /srv exited \(3\) before "never"/);
  f.child.emit('exit', 3);
  await never;
  t.equal(await r.exited, 3);
});
