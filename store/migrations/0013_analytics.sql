-- Handoff analytics read a Page's owner changes over a range of time.
CREATE INDEX thread_transitions_page_at ON thread_transitions (page_id, at);
