/**
 * Child of the kill -9 harness: open the store, verify + apply one bundle, report.
 * argv: STATE_DIR BUNDLE_FILE PUBLIC_KEY_B64
 * stdout: "ready" just before the apply starts, then "done MS" when it committed.
 */
import fs from 'node:fs';
import { Store } from '../../src/store/index.js';
import { OtaService } from '../../src/ota/index.js';

const [dir, file, key] = process.argv.slice(2) as [string, string, string];
const store = await Store.open({ dir, backups: false });
const ota = new OtaService({ store, boardKeys: [key] });
const bytes = fs.readFileSync(file);
process.stdout.write('ready\n');
const t0 = performance.now();
ota.apply(bytes, 'cli');
const ms = performance.now() - t0;
store.close();
process.stdout.write(`done ${ms.toFixed(1)}\n`);
