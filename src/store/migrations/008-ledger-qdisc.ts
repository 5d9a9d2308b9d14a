/**
 * 008: the kernel ledger also records a qdisc duocell adds (the ratio mode's pacer on the
 * cellular egress, drivers/tc): key = the interface. SQLite cannot change a CHECK constraint in
 * place, so `kernel_ledger` is rebuilt with the wider CHECK and its rows copied (it has no
 * index, trigger, view or foreign key of its own).
 */
export const sql = `
CREATE TABLE kernel_ledger_new (
  kind TEXT NOT NULL CHECK (kind IN ('sysctl', 'limits', 'endpoint', 'table', 'qdisc')),
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (kind, key)
) WITHOUT ROWID;
INSERT INTO kernel_ledger_new (kind, key, value, recorded_at) SELECT kind, key, value, recorded_at FROM kernel_ledger;
DROP TABLE kernel_ledger;
ALTER TABLE kernel_ledger_new RENAME TO kernel_ledger;
`;
