-- Handover reasons and metadata (issue #14): every control operation and
-- every owner change records why; offers of a conversation to the agents;
-- and the durable outbox of events to the Page's bot.

ALTER TABLE thread_transitions ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE thread_transitions ADD COLUMN metadata TEXT NOT NULL DEFAULT '';  -- flat JSON object, or ''
ALTER TABLE control_ops ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE control_ops ADD COLUMN metadata TEXT NOT NULL DEFAULT '';

-- A bot's handover of one identity to the agents (POST /1.0/handovers, or
-- the Engage API): passed at once (mode pass) or offered until an agent
-- accepts (mode offer). At most one offer is open per identity; accepting
-- is a conditional UPDATE on status, so exactly one agent wins.
CREATE TABLE handovers (
    id              {{identity}},
    page_id         TEXT    NOT NULL,
    psid            TEXT    NOT NULL,
    mode            TEXT    NOT NULL,            -- offer | pass
    status          TEXT    NOT NULL,            -- open | accepted | declined | expired | replaced | done | pending | failed
    reason          TEXT    NOT NULL,
    metadata        TEXT    NOT NULL DEFAULT '',
    created_by      TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT,                      -- an open offer's deadline
    decided_by      TEXT    NOT NULL DEFAULT '',
    decided_at      BIGINT,
    intervention_id BIGINT,
    error           TEXT    NOT NULL DEFAULT '',
    graph_code      BIGINT  NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX handovers_open_offer ON handovers (page_id, psid) WHERE status = 'open';
CREATE INDEX handovers_thread ON handovers (page_id, psid, id);
CREATE INDEX handovers_expiring ON handovers (expires_at) WHERE status = 'open';
CREATE INDEX handovers_pending ON handovers (created_at) WHERE status = 'pending';

-- Events to the Page's bot (handover.offered, .accepted, .declined,
-- .expired, .failed, .returned): written under the thread's row lock in the
-- transaction that makes them, so ids order a thread's events; delivered
-- signed, retried, oldest first per thread, with an id that stays the same.
CREATE TABLE bot_events (
    id              {{identity}},
    event_id        TEXT    NOT NULL UNIQUE,
    page_id         TEXT    NOT NULL,
    psid            TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL,            -- pending | delivered | failed
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_until     BIGINT,
    last_status     BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX bot_events_pending ON bot_events (page_id, psid, id) WHERE status = 'pending';

-- The open offer a conversation shows (the agents' queue marks it offered).
ALTER TABLE conversations ADD COLUMN offer_id BIGINT;
