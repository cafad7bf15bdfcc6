-- The agents' console: signed-in browser sessions. The cookie holds a
-- random session id; only its SHA-256 is stored, so a copy of the
-- database does not sign anyone in.
CREATE TABLE console_sessions (
    id_sha256    TEXT   PRIMARY KEY,  -- hex SHA-256 of the cookie's session id
    user_name    TEXT   NOT NULL,     -- the configured user (agent or admin)
    csrf_token   TEXT   NOT NULL,     -- sent back in X-CSRF-Token on every write
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
