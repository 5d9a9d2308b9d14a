/**
 * 005: candidate proxies get a name (unique), a site label, a type (on-path / off-path), an
 * optional SOCKS5 endpoint beside the main one, the applications they serve and the subscriber
 * policies they serve (JSON arrays). Existing rows are named after their endpoint.
 */
export const sql = `
ALTER TABLE proxies ADD COLUMN name TEXT;
ALTER TABLE proxies ADD COLUMN location TEXT NOT NULL DEFAULT '';
ALTER TABLE proxies ADD COLUMN type TEXT NOT NULL DEFAULT 'off-path' CHECK (type IN ('on-path', 'off-path'));
ALTER TABLE proxies ADD COLUMN socks5 TEXT;
ALTER TABLE proxies ADD COLUMN apps TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(apps) AND json_type(apps) = 'array');
ALTER TABLE proxies ADD COLUMN policies TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(policies) AND json_type(policies) = 'array');
UPDATE proxies SET name = 'px-' || replace(address, ':', '.') || '-' || port WHERE name IS NULL;
CREATE UNIQUE INDEX proxies_name ON proxies(name);
`;
