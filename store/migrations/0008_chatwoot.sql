-- Chatwoot compatibility: a conversation's team and labels, when the agents
-- last read it, and the files agents attach to messages (kept here and
-- served back at an unguessable URL, which is also what Messenger fetches).

ALTER TABLE conversations ADD COLUMN team_id BIGINT;
ALTER TABLE conversations ADD COLUMN agent_last_seen_at BIGINT;

CREATE TABLE conversation_labels (
    conversation_id BIGINT  NOT NULL REFERENCES conversations (id),
    label           TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (conversation_id, label)
);
CREATE INDEX conversation_labels_label ON conversation_labels (label, conversation_id);

CREATE TABLE inbox_attachments (
    id           {{identity}},
    account_id   BIGINT  NOT NULL,
    message_id   BIGINT  NOT NULL REFERENCES inbox_messages (id),
    token        TEXT    NOT NULL UNIQUE,     -- the URL's secret part
    file_type    TEXT    NOT NULL,            -- image | audio | video | file
    content_type TEXT    NOT NULL,
    filename     TEXT    NOT NULL,
    size         BIGINT  NOT NULL,
    data         TEXT    NOT NULL,            -- base64: one column type on both dialects
    created_at   BIGINT  NOT NULL
);
CREATE INDEX inbox_attachments_message ON inbox_attachments (message_id);
