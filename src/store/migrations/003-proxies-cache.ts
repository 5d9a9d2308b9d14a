/** 003: candidate proxies (concentrators), the M-server cache, local secrets and admin credentials. */
export const sql = `
CREATE TABLE proxies (
  address TEXT NOT NULL,
  port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
  protocol TEXT NOT NULL CHECK (protocol IN ('convert', 'socks5')),
  priority INTEGER NOT NULL DEFAULT 0,
  weight INTEGER NOT NULL DEFAULT 1 CHECK (weight BETWEEN 0 AND 1000),
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  PRIMARY KEY (address, port)
) WITHOUT ROWID;

CREATE TABLE mserver_cache (
  address TEXT NOT NULL,
  port INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (address, port)
) WITHOUT ROWID;
CREATE INDEX mserver_cache_expires ON mserver_cache(expires_at);

CREATE TABLE secrets (
  name TEXT NOT NULL PRIMARY KEY,
  value BLOB NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE credentials (
  name TEXT NOT NULL PRIMARY KEY,
  hash TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
`;
