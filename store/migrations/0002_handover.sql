-- Handovers handoverd asks Facebook for, agents' interventions, and agent
-- messages waiting for (or sent after) thread control.

-- One thread-control operation handoverd performs against the Graph API.
-- At most one is in flight per thread; concurrent callers wait on it.
CREATE TABLE control_ops (
    id            {{identity}},
    page_id       TEXT    NOT NULL,
    psid          TEXT    NOT NULL,
    direction     TEXT    NOT NULL,              -- to_agent | to_bot | release
    op            TEXT    NOT NULL,              -- request_thread_control | take_thread_control | pass_thread_control | release_thread_control | none
    target_app_id TEXT    NOT NULL DEFAULT '',
    actor         TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL,              -- in_flight | succeeded | failed
    error         TEXT    NOT NULL DEFAULT '',
    graph_code    BIGINT  NOT NULL DEFAULT 0,
    graph_subcode BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    finished_at   BIGINT
);
CREATE UNIQUE INDEX control_ops_in_flight ON control_ops (page_id, psid) WHERE status = 'in_flight';
CREATE INDEX control_ops_thread ON control_ops (page_id, psid, id);

-- An agent's engagement with one identity (Engage Digital's intervention).
CREATE TABLE interventions (
    id               {{identity}},
    page_id          TEXT    NOT NULL,
    psid             TEXT    NOT NULL,
    status           TEXT    NOT NULL,           -- open | closed
    opened_by        TEXT    NOT NULL,
    opened_at        BIGINT  NOT NULL,
    last_activity_at BIGINT  NOT NULL,
    closed_by        TEXT    NOT NULL DEFAULT '',
    closed_at        BIGINT,
    close_reason     TEXT    NOT NULL DEFAULT '' -- agent | idle
);
CREATE UNIQUE INDEX interventions_open ON interventions (page_id, psid) WHERE status = 'open';
CREATE INDEX interventions_thread ON interventions (page_id, psid, id);

-- Agent messages: sent once handoverd holds the thread, durably queued until then.
CREATE TABLE agent_messages (
    id              {{identity}},
    page_id         TEXT    NOT NULL,
    psid            TEXT    NOT NULL,
    intervention_id BIGINT,
    actor           TEXT    NOT NULL,
    message         TEXT    NOT NULL,            -- Send API message object (JSON)
    status          TEXT    NOT NULL,            -- waiting | sent | failed
    mid             TEXT    NOT NULL DEFAULT '',
    messaging_type  TEXT    NOT NULL DEFAULT '',
    error           TEXT    NOT NULL DEFAULT '',
    reacquired      BIGINT  NOT NULL DEFAULT 0,  -- control re-acquisitions after a stale-owner refusal (at most 1)
    lease_until     BIGINT,
    created_at      BIGINT  NOT NULL,
    deadline_at     BIGINT  NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX agent_messages_waiting ON agent_messages (page_id, psid, id) WHERE status = 'waiting';
