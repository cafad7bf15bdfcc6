-- Per-Page mode detection and reconciliation of doubtful threads.

-- What Graph's answers showed of a Page's routing (app_roles events are
-- kept in page_app_roles): thread_owner naming an app other than ours for
-- a thread we do not own means handoverd is the Page's default app
-- (Conversation Routing shows the owner only to the owner and the default app).
CREATE TABLE page_graph_evidence (
    page_id        TEXT    PRIMARY KEY,
    default_app_id TEXT    NOT NULL,          -- the default app the answer implies
    source         TEXT    NOT NULL,          -- thread_owner
    observed_at    BIGINT  NOT NULL
);

-- Threads whose state is doubtful, to be checked with thread_owner. A
-- thread is due while doubted_at > checked_at; a process checking it holds
-- lease_until, so of several processes only one asks Graph about a thread.
CREATE TABLE reconcile_threads (
    page_id     TEXT    NOT NULL,
    psid        TEXT    NOT NULL,
    reason      TEXT    NOT NULL,              -- request_timeout | send_refused | handover_failed
    doubted_at  BIGINT  NOT NULL,              -- when the newest doubt arose (ms)
    checked_at  BIGINT  NOT NULL DEFAULT 0,    -- when the last check started (ms)
    lease_until BIGINT,
    attempts    BIGINT  NOT NULL DEFAULT 0,
    result      TEXT    NOT NULL DEFAULT '',   -- the owner Graph showed, or "error: ..."
    PRIMARY KEY (page_id, psid)
);
CREATE INDEX reconcile_threads_due ON reconcile_threads (doubted_at) WHERE doubted_at > checked_at;

-- thread_owner calls reconciliation made per Page and window of the clock,
-- shared by every process: the rate limit.
CREATE TABLE reconcile_rate (
    page_id      TEXT    NOT NULL,
    window_start BIGINT  NOT NULL,             -- ms
    calls        BIGINT  NOT NULL,
    PRIMARY KEY (page_id, window_start)
);

-- The doubts reconciliation looks for.
CREATE INDEX threads_pending ON threads (pending_at) WHERE pending_app_id <> '';
CREATE INDEX control_ops_failed ON control_ops (finished_at) WHERE status = 'failed';
