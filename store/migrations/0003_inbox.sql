-- The agents' inbox (a Chatwoot-style API channel): inboxes, contacts, their
-- sessions per inbox, conversations, messages; the event log live updates
-- replay from; and the outbox of signed webhook deliveries.

CREATE TABLE agents (
    id   {{identity}},
    name TEXT    NOT NULL UNIQUE             -- the config user's name
);

CREATE TABLE inboxes (
    id             {{identity}},
    account_id     BIGINT  NOT NULL,
    name           TEXT    NOT NULL,
    channel_type   TEXT    NOT NULL,          -- facebook | api
    page_id        TEXT    UNIQUE,            -- the Messenger Page, for facebook inboxes
    webhook_url    TEXT    NOT NULL DEFAULT '',
    webhook_secret TEXT    NOT NULL DEFAULT '', -- HMAC key for deliveries to webhook_url
    created_at     BIGINT  NOT NULL
);

CREATE TABLE contacts (
    id                    {{identity}},
    account_id            BIGINT  NOT NULL,
    name                  TEXT    NOT NULL DEFAULT '',
    email                 TEXT    NOT NULL DEFAULT '',
    phone_number          TEXT    NOT NULL DEFAULT '',
    avatar_url            TEXT    NOT NULL DEFAULT '',
    identifier            TEXT    NOT NULL DEFAULT '',
    custom_attributes     TEXT    NOT NULL DEFAULT '{}',
    additional_attributes TEXT    NOT NULL DEFAULT '{}',
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);

CREATE TABLE contact_inboxes (
    id         {{identity}},
    contact_id BIGINT  NOT NULL REFERENCES contacts (id),
    inbox_id   BIGINT  NOT NULL REFERENCES inboxes (id),
    source_id  TEXT    NOT NULL,              -- the session id; for Messenger the PSID
    created_at BIGINT  NOT NULL,
    UNIQUE (inbox_id, source_id)
);

CREATE TABLE conversations (
    id                    {{identity}},
    account_id            BIGINT  NOT NULL,
    inbox_id              BIGINT  NOT NULL REFERENCES inboxes (id),
    contact_id            BIGINT  NOT NULL REFERENCES contacts (id),
    contact_inbox_id      BIGINT  NOT NULL REFERENCES contact_inboxes (id),
    status                TEXT    NOT NULL,   -- open | pending | resolved | snoozed
    assignee_id           BIGINT,
    page_id               TEXT    NOT NULL DEFAULT '',
    psid                  TEXT    NOT NULL DEFAULT '',
    thread_owner          TEXT    NOT NULL DEFAULT '',
    additional_attributes TEXT    NOT NULL DEFAULT '{}',
    custom_attributes     TEXT    NOT NULL DEFAULT '{}',
    agent_waiting_since   BIGINT,             -- entered the agents' queue, no agent reply since
    last_activity_at      BIGINT  NOT NULL,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);
CREATE INDEX conversations_account_status ON conversations (account_id, status, last_activity_at);
CREATE INDEX conversations_contact_inbox ON conversations (contact_inbox_id, id);

CREATE TABLE inbox_messages (
    id                 {{identity}},
    account_id         BIGINT  NOT NULL,
    inbox_id           BIGINT  NOT NULL,
    conversation_id    BIGINT  NOT NULL REFERENCES conversations (id),
    message_type       TEXT    NOT NULL,      -- incoming | outgoing | activity
    private            BIGINT  NOT NULL DEFAULT 0,
    content            TEXT    NOT NULL DEFAULT '',
    content_type       TEXT    NOT NULL DEFAULT 'text',
    content_attributes TEXT    NOT NULL DEFAULT '{}',
    attachments        TEXT    NOT NULL DEFAULT '[]',
    sender_type        TEXT    NOT NULL DEFAULT '', -- contact | agent | bot ('' for activity)
    sender_id          BIGINT,
    sender_name        TEXT    NOT NULL DEFAULT '',
    source_id          TEXT,                  -- the Messenger mid
    status             TEXT    NOT NULL DEFAULT 'sent', -- queued | sent | delivered | read | failed
    error              TEXT    NOT NULL DEFAULT '',
    agent_message_id   BIGINT,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    UNIQUE (inbox_id, source_id)
);
CREATE INDEX inbox_messages_conversation ON inbox_messages (conversation_id, id);

-- Every inbox event. seq orders them in commit order (live updates resume
-- after a seq; deliveries go out in seq order): on SQLite it is set as the
-- event is written (one writer), on PostgreSQL by the sequencer just after
-- commit, because ids are handed out before commit and so can commit out of
-- order.
CREATE TABLE inbox_events (
    id              {{identity}},
    account_id      BIGINT  NOT NULL,
    conversation_id BIGINT,
    event           TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    seq             BIGINT  UNIQUE,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX inbox_events_account ON inbox_events (account_id, seq);
CREATE INDEX inbox_events_unsequenced ON inbox_events (id) WHERE seq IS NULL;

-- Signed webhook deliveries, retried until delivered or given up.
CREATE TABLE outbox (
    id              {{identity}},
    event_id        BIGINT  NOT NULL REFERENCES inbox_events (id),
    account_id      BIGINT  NOT NULL,
    conversation_id BIGINT  NOT NULL DEFAULT 0,
    target          TEXT    NOT NULL,         -- inbox:<id> | config:<url>
    url             TEXT    NOT NULL,
    delivery_id     TEXT    NOT NULL UNIQUE,  -- the same across retries
    status          TEXT    NOT NULL,         -- pending | delivered | failed
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_until     BIGINT,
    last_status     BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX outbox_pending ON outbox (target, conversation_id, id) WHERE status = 'pending';
