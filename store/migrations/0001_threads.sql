-- Thread control: who owns each (page, PSID) conversation, and every change.

CREATE TABLE threads (
    page_id             TEXT    NOT NULL,
    psid                TEXT    NOT NULL,
    owner               TEXT    NOT NULL,              -- bot | agent | page_inbox | idle | other
    owner_app_id        TEXT    NOT NULL DEFAULT '',
    state_at            BIGINT  NOT NULL DEFAULT 0,    -- event time (ms) of the newest ownership evidence applied
    activity_at         BIGINT,                        -- newest customer message or control change (ms)
    expires_at          BIGINT,                        -- when an owned thread falls idle (ms); NULL when idle
    last_customer_at    BIGINT,                        -- the customer's newest message (ms): the messaging window
    pending_app_id      TEXT    NOT NULL DEFAULT '',   -- app that asked for control and has not got it yet
    pending_at          BIGINT,
    delivered_watermark BIGINT,
    read_watermark      BIGINT,
    version             BIGINT  NOT NULL DEFAULT 1,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    PRIMARY KEY (page_id, psid)
);
CREATE INDEX threads_expires_at ON threads (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE thread_transitions (
    id          {{identity}},
    page_id     TEXT    NOT NULL,
    psid        TEXT    NOT NULL,
    at          BIGINT  NOT NULL,              -- when it happened (event time, ms)
    from_owner  TEXT    NOT NULL,
    from_app_id TEXT    NOT NULL DEFAULT '',
    to_owner    TEXT    NOT NULL,
    to_app_id   TEXT    NOT NULL DEFAULT '',
    cause       TEXT    NOT NULL,
    actor       TEXT    NOT NULL DEFAULT '',   -- API user behind it, if any
    event_id    BIGINT,                        -- webhook_events.id behind it, if any
    recorded_at BIGINT  NOT NULL
);
CREATE INDEX thread_transitions_thread ON thread_transitions (page_id, psid, id);

-- Every webhook event applied, keyed for deduplication of Meta's redeliveries.
CREATE TABLE webhook_events (
    id          {{identity}},
    dedupe_key  TEXT    NOT NULL UNIQUE,
    page_id     TEXT    NOT NULL,
    psid        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    occurred_at BIGINT  NOT NULL,
    received_at BIGINT  NOT NULL,
    outcome     TEXT    NOT NULL,
    payload     TEXT    NOT NULL
);
CREATE INDEX webhook_events_thread ON webhook_events (page_id, psid, occurred_at);

-- Messages seen on the thread: the customer's, and echoes of what apps sent.
CREATE TABLE messages (
    mid         TEXT    PRIMARY KEY,
    page_id     TEXT    NOT NULL,
    psid        TEXT    NOT NULL,
    direction   TEXT    NOT NULL,              -- in (customer) | out (echo)
    app_id      TEXT    NOT NULL DEFAULT '',   -- sending app, for echoes
    kind        TEXT    NOT NULL,              -- message | postback
    text        TEXT    NOT NULL DEFAULT '',
    payload     TEXT    NOT NULL,              -- the message object as received (JSON)
    channel     TEXT    NOT NULL,              -- messaging | standby
    occurred_at BIGINT  NOT NULL,
    received_at BIGINT  NOT NULL
);
CREATE INDEX messages_thread ON messages (page_id, psid, occurred_at);

-- The app roles a Page admin last assigned (HOP v1 app_roles events).
CREATE TABLE page_app_roles (
    page_id    TEXT   PRIMARY KEY,
    app_roles  TEXT   NOT NULL,            -- JSON object: app id -> roles
    event_at   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
