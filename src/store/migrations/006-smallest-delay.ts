/**
 * 006: the steering mode `smallest-delay` is accepted for policies. SQLite cannot change a
 * CHECK constraint in place, so `policies` is rebuilt: a new table with the wider CHECK, rows
 * copied with their ids (subscribers.policy_id keeps pointing at them), the old table dropped
 * and the new one renamed. The migration runs with foreign keys off (see Migration.rebuild) and
 * db.ts checks PRAGMA foreign_key_check before it commits. `policies` has no index, trigger or
 * view of its own; its UNIQUE(name) comes back with the table.
 */
export const sql = `
CREATE TABLE policies_new (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
  max_sessions_per_ue INTEGER CHECK (max_sessions_per_ue IS NULL OR max_sessions_per_ue BETWEEN 0 AND 1000000),
  max_subflows_per_session INTEGER CHECK (max_subflows_per_session IS NULL OR max_subflows_per_session BETWEEN 0 AND 8),
  max_sessions_per_nserver INTEGER CHECK (max_sessions_per_nserver IS NULL OR max_sessions_per_nserver BETWEEN 0 AND 1000000),
  steering_mode TEXT CHECK (steering_mode IS NULL OR steering_mode IN ('active-standby', 'priority', 'ratio', 'smallest-delay')),
  ratio_cellular INTEGER CHECK (ratio_cellular IS NULL OR ratio_cellular BETWEEN 0 AND 100),
  ratio_wlan INTEGER CHECK (ratio_wlan IS NULL OR ratio_wlan BETWEEN 0 AND 100),
  allowed_networks TEXT,
  intercept_ports TEXT,
  updated_at INTEGER NOT NULL
);
INSERT INTO policies_new (id, name, max_sessions_per_ue, max_subflows_per_session, max_sessions_per_nserver,
                          steering_mode, ratio_cellular, ratio_wlan, allowed_networks, intercept_ports, updated_at)
  SELECT id, name, max_sessions_per_ue, max_subflows_per_session, max_sessions_per_nserver,
         steering_mode, ratio_cellular, ratio_wlan, allowed_networks, intercept_ports, updated_at
  FROM policies;
DROP TABLE policies;
ALTER TABLE policies_new RENAME TO policies;
`;
