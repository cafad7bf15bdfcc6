-- Bot claims and echoes (the Lexer-compatible Chatbot User API), and
-- handover by silence: a customer message in a conversation the bot handles
-- surfaces to the agents unless the bot claims it within a grace period.

ALTER TABLE inbox_messages ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE inbox_messages ADD COLUMN claimed_at BIGINT;
ALTER TABLE inbox_messages ADD COLUMN surface_at BIGINT;    -- when it surfaces to agents if still unclaimed
ALTER TABLE inbox_messages ADD COLUMN surfaced_at BIGINT;
ALTER TABLE inbox_messages ADD COLUMN automated BIGINT NOT NULL DEFAULT 0; -- the bot echoed it as its own
CREATE INDEX inbox_messages_surface ON inbox_messages (surface_at) WHERE surface_at IS NOT NULL AND surfaced_at IS NULL AND claimed_at IS NULL;

ALTER TABLE inboxes ADD COLUMN bot_claims_at BIGINT;             -- the Page's bot claims what it handles

-- Claims and echoes as the bot sent them, kept until (and after) the
-- message they name lands: either may come before Meta's webhook.
CREATE TABLE bot_objects (
    id           {{identity}},
    page_id      TEXT    NOT NULL,
    object_id    TEXT    NOT NULL,   -- the Messenger mid
    kind         TEXT    NOT NULL,   -- claim | echo
    bot          TEXT    NOT NULL,   -- the bot user
    published_at BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    applied_at   BIGINT,
    UNIQUE (page_id, object_id, kind)
);
