import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDb, schemaDump, userVersion, MIGRATIONS, SCHEMA_VERSION, Store } from '../../src/store/index.js';
import { isDuocellError } from '../../src/core/errors.js';

/** The DuocellError code a promise rejects with ('resolved' if it does not). */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return isDuocellError(e) ? e.code : `not a DuocellError: ${String(e)}`;
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-store-mig-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('migrating from empty and from every earlier version yields the same schema', async (t) => {
  const fresh = await openDb({ file: path.join(tmp, 'fresh.db') });
  const want = schemaDump(fresh);
  t.equal(userVersion(fresh), SCHEMA_VERSION, 'fresh database is at the latest version');
  fresh.close();
  t.ok(MIGRATIONS.length >= 3, 'a chain of migrations exists');
  for (let v = 1; v < SCHEMA_VERSION; v++) {
    const file = path.join(tmp, `from-v${v}.db`);
    const old = await openDb({ file, targetVersion: v });
    t.equal(userVersion(old), v, `stopped at version ${v}`);
    // data written at the old version must survive the later migrations
    old.prepare(`INSERT INTO subscribers (name, policy_id, enabled, created_at, updated_at) VALUES ('old-${v}', NULL, 1, 1, 1)`).run();
    old.close();
    const up = await openDb({ file });
    t.equal(schemaDump(up), want, `schema from v${v} equals schema from empty`);
    t.equal((up.prepare('SELECT count(*) n FROM subscribers').get() as { n: number }).n, 1, `rows kept from v${v}`);
    up.close();
    t.ok(fs.existsSync(`${file}.bak-v${v}`), `backup taken before migrating from v${v}`);
  }
});

t.test('a newer schema is refused, a failing migration leaves the old version', async (t) => {
  const file = path.join(tmp, 'newer.db');
  const db = await openDb({ file });
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  t.equal(await codeOf(openDb({ file })), 'DC_STORE_SCHEMA_NEWER');

  const file2 = path.join(tmp, 'broken.db');
  const db2 = await openDb({ file: file2, targetVersion: 1 });
  db2.exec('CREATE TABLE audit_log (x)'); // makes migration 2 fail half-way
  db2.close();
  t.equal(await codeOf(openDb({ file: file2 })), 'DC_STORE_MIGRATION');
  const db3 = await openDb({ file: file2, targetVersion: 1 });
  t.equal(userVersion(db3), 1, 'still at version 1');
  t.notOk(db3.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'ota_state'`).get(), 'nothing of migration 2 left behind');
  db3.close();
});

t.test('not a database file', async (t) => {
  const file = path.join(tmp, 'junk.db');
  fs.writeFileSync(file, Buffer.alloc(4096, 0x41));
  t.equal(await codeOf(Store.open({ file })), 'DC_STORE_OPEN');
});

t.test('pragmas: WAL and foreign keys', async (t) => {
  const s = await Store.open({ dir: path.join(tmp, 'state') });
  t.equal(s.connectionInfo().journalMode, 'wal');
  t.equal(s.connectionInfo().foreignKeys, true);
  t.equal(s.file, path.join(tmp, 'state', 'duocell.db'));
  s.close();
});

t.test('006 rebuilds policies for smallest-delay: rows, ids, foreign keys and indexes kept', async (t) => {
  const file = path.join(tmp, 'v5-rows.db');
  const old = await openDb({ file, targetVersion: 5 });
  old.prepare(`INSERT INTO policies (name, steering_mode, ratio_cellular, ratio_wlan, allowed_networks, intercept_ports, updated_at) VALUES ('gold', 'ratio', 30, 70, '["10.0.0.0/8"]', '[80]', 7)`).run();
  old.prepare(`INSERT INTO policies (name, steering_mode, max_subflows_per_session, updated_at) VALUES ('lab', 'active-standby', 2, 8)`).run();
  const gold = (old.prepare(`SELECT id FROM policies WHERE name = 'gold'`).get() as { id: number }).id;
  old.prepare(`INSERT INTO subscribers (name, policy_id, enabled, created_at, updated_at) VALUES ('alice', ?, 1, 1, 1)`).run(gold);
  t.throws(() => old.prepare(`UPDATE policies SET steering_mode = 'smallest-delay' WHERE name = 'lab'`).run(), /CHECK/, 'v5 refuses smallest-delay');
  const before = old.prepare('SELECT * FROM policies ORDER BY id').all();
  old.close();

  const db = await openDb({ file });
  t.teardown(() => db.close());
  t.equal(userVersion(db), SCHEMA_VERSION);
  t.same(db.prepare('SELECT * FROM policies ORDER BY id').all(), before, 'every policy row and id kept');
  t.equal(db.pragma('foreign_keys', { simple: true }), 1, 'foreign keys back on');
  t.same(db.pragma('foreign_key_check'), [], 'no dangling reference');
  t.same(db.prepare(`SELECT p.name FROM subscribers s JOIN policies p ON p.id = s.policy_id WHERE s.name = 'alice'`).get(), { name: 'gold' }, 'alice still on gold');
  t.ok(db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'subscribers_policy'`).get(), 'subscribers index kept');
  t.notOk(db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'policies_new'`).get(), 'no leftover table');
  db.prepare(`UPDATE policies SET steering_mode = 'smallest-delay' WHERE name = 'lab'`).run();
  t.equal((db.prepare(`SELECT steering_mode m FROM policies WHERE name = 'lab'`).get() as { m: string }).m, 'smallest-delay', 'accepted now');
  t.throws(() => db.prepare(`UPDATE policies SET steering_mode = 'fastest' WHERE name = 'lab'`).run(), /CHECK/, 'other modes still refused');
  t.throws(() => db.prepare(`DELETE FROM policies WHERE name = 'gold'`).run(), /FOREIGN KEY/, 'ON DELETE RESTRICT still enforced');
  t.throws(() => db.prepare(`INSERT INTO subscribers (name, policy_id, enabled, created_at, updated_at) VALUES ('bob', 9999, 1, 1, 1)`).run(), /FOREIGN KEY/, 'references still checked');
  t.throws(() => db.prepare(`INSERT INTO policies (name, updated_at) VALUES ('gold', 1)`).run(), /UNIQUE/, 'unique names kept');
});

t.test('a rebuild that would leave a dangling reference is rolled back', async (t) => {
  const file = path.join(tmp, 'v5-dangling.db');
  const old = await openDb({ file, targetVersion: 5 });
  old.pragma('foreign_keys = OFF');
  old.prepare(`INSERT INTO subscribers (name, policy_id, enabled, created_at, updated_at) VALUES ('ghost', 4242, 1, 1, 1)`).run();
  old.close();
  t.equal(await codeOf(openDb({ file })), 'DC_STORE_MIGRATION', 'refused');
  const again = await openDb({ file, targetVersion: 5 });
  t.teardown(() => again.close());
  t.equal(userVersion(again), 5, 'still at version 5');
  t.notOk(again.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'policies_new'`).get(), 'nothing of the rebuild left behind');
  t.throws(() => again.prepare(`UPDATE policies SET steering_mode = 'smallest-delay'`).run(), /CHECK/, 'the old constraint is in force');
});
