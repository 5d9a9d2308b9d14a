/**
 * 004: the kernel ledger (issue 16, item 4). What duocell changed in the kernel, written BEFORE
 * each change: `original` rows keep the value found before the first change (a sysctl, the MPTCP
 * limits) and are never overwritten while they exist; `made` rows name what duocell created (an
 * MPTCP endpoint, a routing table whose duocell-made rules and routes it owns). A clean exit
 * undoes them all and empties the table; a start that finds rows undoes them first (the run
 * before did not exit cleanly), so it never takes its own leftovers for the originals.
 */
export const sql = `
CREATE TABLE kernel_ledger (
  kind TEXT NOT NULL CHECK (kind IN ('sysctl', 'limits', 'endpoint', 'table')),
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (kind, key)
) WITHOUT ROWID;
`;
