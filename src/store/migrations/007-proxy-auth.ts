/**
 * 007: a SOCKS5 candidate may carry RFC 1929 credentials (JSON `{"username", "password"}`, or
 * NULL). They stay in the store: the API, the page and the CLI show only the username.
 */
export const sql = `
ALTER TABLE proxies ADD COLUMN auth TEXT CHECK (auth IS NULL OR (json_valid(auth) AND json_type(auth) = 'object'));
`;
