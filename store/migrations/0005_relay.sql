-- Relay bots: chatbots without a Facebook app, run behind handoverd's app
-- over the Userlike-compatible chatbot protocol.

-- A bot's session with one customer (Userlike's cid).
CREATE TABLE relay_sessions (
    id               {{identity}},
    page_id          TEXT    NOT NULL,
    psid             TEXT    NOT NULL,
    bot              TEXT    NOT NULL,
    cid              TEXT    NOT NULL UNIQUE,
    status           TEXT    NOT NULL,           -- active | forwarded | ended
    context          TEXT    NOT NULL DEFAULT '{}',
    conversation     TEXT    NOT NULL DEFAULT '{}',
    pending_choice   TEXT    NOT NULL DEFAULT '',
    end_reason       TEXT    NOT NULL DEFAULT '', -- end | forward | bot_down | timeout | agent
    last_error       TEXT    NOT NULL DEFAULT '',
    started_at       BIGINT  NOT NULL,
    last_activity_at BIGINT  NOT NULL,
    ended_at         BIGINT
);
CREATE UNIQUE INDEX relay_sessions_active ON relay_sessions (page_id, psid) WHERE status = 'active';

-- Webhook calls to the bot, in order per session, at least once.
CREATE TABLE relay_calls (
    id              {{identity}},
    session_id      BIGINT  NOT NULL REFERENCES relay_sessions (id),
    packet          TEXT    NOT NULL,            -- {"name","payload"}
    status          TEXT    NOT NULL,            -- pending | delivered | failed
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX relay_calls_pending ON relay_calls (session_id, id) WHERE status = 'pending';

-- Events the bot triggered, run in order per session when due (delay holds
-- back the ones after it).
CREATE TABLE relay_actions (
    id         {{identity}},
    session_id BIGINT  NOT NULL REFERENCES relay_sessions (id),
    event      TEXT    NOT NULL,                 -- the event as the bot sent it
    due_at     BIGINT  NOT NULL,
    status     TEXT    NOT NULL,                 -- pending | done | failed | aborted
    error      TEXT    NOT NULL DEFAULT '',
    lease_until BIGINT,
    created_at BIGINT  NOT NULL,
    done_at    BIGINT
);
CREATE INDEX relay_actions_pending ON relay_actions (session_id, id) WHERE status = 'pending';

-- Messages a relay bot sends are automated: no HUMAN_AGENT tag.
ALTER TABLE agent_messages ADD COLUMN automated BIGINT NOT NULL DEFAULT 0;
