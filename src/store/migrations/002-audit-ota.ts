/** 002: the audit log, OTA version state with its one-step rollback snapshot, trusted keys, settings. */
export const sql = `
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  origin TEXT NOT NULL,
  action TEXT NOT NULL,
  entity TEXT NOT NULL,
  entity_key TEXT,
  detail TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);

CREATE TABLE ota_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  current_version INTEGER NOT NULL DEFAULT 0,
  highest_version INTEGER NOT NULL DEFAULT 0,
  applied_at INTEGER,
  bundle_sha256 TEXT
);
INSERT INTO ota_state (id) VALUES (1);

CREATE TABLE ota_previous (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL,
  snapshot TEXT NOT NULL,
  saved_at INTEGER NOT NULL
);

CREATE TABLE ota_keys (
  key_id TEXT NOT NULL PRIMARY KEY,
  public_key TEXT NOT NULL,
  comment TEXT,
  added_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE settings (
  key TEXT NOT NULL PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

ALTER TABLE subscribers ADD COLUMN cookie_hash TEXT;
CREATE UNIQUE INDEX subscribers_cookie ON subscribers(cookie_hash) WHERE cookie_hash IS NOT NULL;
`;
