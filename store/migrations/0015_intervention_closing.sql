-- An intervention whose hand-back has been decided is 'closing' until the
-- thread is given back and the close recorded: it takes no agent message
-- and asks for no control, and it still counts as the identity's one
-- unfinished intervention (a new one opens only once it is closed).
DROP INDEX interventions_open;
CREATE UNIQUE INDEX interventions_open ON interventions (page_id, psid) WHERE status IN ('open', 'closing');
