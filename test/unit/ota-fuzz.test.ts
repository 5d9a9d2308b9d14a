import t from 'tap';
import { fuzz } from '../../bench/fuzz/ota.js';

t.test('OTA bundle parser and store CLI survive 20k random, mutated and hostile inputs', async (t) => {
  const before = process.memoryUsage().heapUsed;
  const res = await fuzz(Number(process.env.DUOCELL_FUZZ_OTA ?? 20_000), 5);
  t.comment(JSON.stringify(res));
  const codes = Object.keys(res.rejected);
  t.ok(codes.every((c) => /^(cli:)?DC_[A-Z_]+$/.test(c)), 'every rejection is a coded DuocellError');
  for (const c of ['DC_OTA_MALFORMED', 'DC_OTA_UNSIGNED', 'DC_OTA_UNTRUSTED_KEY', 'DC_OTA_BAD_SIGNATURE', 'DC_OTA_SCHEMA_INVALID', 'DC_OTA_ROLLBACK']) {
    t.ok((res.rejected[c] ?? 0) > 0, `${c} is reached (${res.rejected[c] ?? 0})`);
  }
  t.ok(res.applied > 0, `some bundles are valid and apply (${res.applied})`);
  t.ok(res.cli > 0 && (res.rejected['cli:DC_USAGE'] ?? 0) > 0, `CLI paths exercised (${res.cli})`);
  t.ok(process.memoryUsage().heapUsed - before < 256 * 1024 * 1024, 'no unbounded growth');
});
