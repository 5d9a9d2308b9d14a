/** 001: policies, subscribers and their identifiers, N-server limits. */
export const sql = `
CREATE TABLE policies (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
  max_sessions_per_ue INTEGER CHECK (max_sessions_per_ue IS NULL OR max_sessions_per_ue BETWEEN 0 AND 1000000),
  max_subflows_per_session INTEGER CHECK (max_subflows_per_session IS NULL OR max_subflows_per_session BETWEEN 0 AND 8),
  max_sessions_per_nserver INTEGER CHECK (max_sessions_per_nserver IS NULL OR max_sessions_per_nserver BETWEEN 0 AND 1000000),
  steering_mode TEXT CHECK (steering_mode IS NULL OR steering_mode IN ('active-standby', 'priority', 'ratio')),
  ratio_cellular INTEGER CHECK (ratio_cellular IS NULL OR ratio_cellular BETWEEN 0 AND 100),
  ratio_wlan INTEGER CHECK (ratio_wlan IS NULL OR ratio_wlan BETWEEN 0 AND 100),
  allowed_networks TEXT,
  intercept_ports TEXT,
  updated_at INTEGER NOT NULL
);
INSERT INTO policies (name, updated_at) VALUES ('default', 0);

CREATE TABLE subscribers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
  policy_id INTEGER REFERENCES policies(id) ON DELETE RESTRICT,
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  credential TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX subscribers_policy ON subscribers(policy_id);

CREATE TABLE subscriber_ids (
  kind TEXT NOT NULL CHECK (kind IN ('prefix', 'mac')),
  value TEXT NOT NULL,
  subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
  PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE INDEX subscriber_ids_subscriber ON subscriber_ids(subscriber_id);

CREATE TABLE nserver_limits (
  prefix TEXT NOT NULL PRIMARY KEY,
  max_sessions INTEGER NOT NULL CHECK (max_sessions BETWEEN 0 AND 1000000)
) WITHOUT ROWID;
`;
