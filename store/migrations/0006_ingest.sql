-- Indexes for the lookups webhook ingest makes per event, so its cost does
-- not grow with the number of threads and contacts stored.

-- A thread's current conversation (inbox, PSID, newest first).
CREATE INDEX conversations_thread ON conversations (inbox_id, psid, id);
-- A contact's sessions (contact views list them).
CREATE INDEX contact_inboxes_contact ON contact_inboxes (contact_id, id);

-- Inbox events store what happened (the message, the changed attributes);
-- their conversation is rendered when they are read. Rows written before
-- this have lazy = 0 and their payload whole.
ALTER TABLE inbox_events ADD COLUMN lazy BIGINT NOT NULL DEFAULT 0;

-- The message log is webhook_events itself: a copy per message was one
-- more write per event on the ingest path. The view keeps the old name for
-- queries; payload is the event as received.
DROP TABLE messages;
CREATE VIEW messages AS
    SELECT substr(dedupe_key, 5) AS mid, page_id, psid,
           CASE WHEN kind = 'echo' THEN 'out' ELSE 'in' END AS direction,
           kind, channel, payload, occurred_at, received_at
    FROM webhook_events WHERE dedupe_key LIKE 'mid:%';
