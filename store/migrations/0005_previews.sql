-- Issue 13: who may open a sandbox's previews, and the key that signs its preview tokens.
-- A sandbox from before this migration has no row: it follows the operator's default
-- (SANDBOXD_PREVIEW_ACCESS) and gets a key when its first token is minted.
CREATE TABLE sandbox_previews (
    sandbox_id TEXT PRIMARY KEY REFERENCES sandboxes (id) ON DELETE CASCADE,
    -- '' follows the operator's default
    access     TEXT NOT NULL DEFAULT '' CHECK (access IN ('', 'public', 'private')),
    -- ports whose access is their own, as JSON: {"3000":"public"}
    ports      TEXT NOT NULL DEFAULT '{}',
    -- a secret: 32 random bytes; rotating it revokes every token. Never shown by the API.
    token_key  BLOB NOT NULL DEFAULT x''
) WITHOUT ROWID;
