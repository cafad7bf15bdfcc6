-- take_thread_control events that do not name the taker (older payloads
-- omit new_owner_app_id) on a Page whose default app is not known: Graph's
-- thread_owner is asked once per such transition, after the commit, and the
-- answer is recorded here.
CREATE TABLE owner_lookups (
    transition_id BIGINT  PRIMARY KEY,        -- thread_transitions.id of the unnamed take
    page_id       TEXT    NOT NULL,
    psid          TEXT    NOT NULL,
    asked_at      BIGINT  NOT NULL,
    answer        TEXT    NOT NULL DEFAULT '', -- the owner recorded, or "error: ..."
    answered_at   BIGINT
);
CREATE INDEX thread_transitions_unnamed_take ON thread_transitions (id)
    WHERE cause = 'take_thread_control' AND to_owner = 'other' AND to_app_id = '';
