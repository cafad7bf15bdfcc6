-- Who sends an agent message, as a kind (agent | relay_bot) beside the
-- sender's name: a relay bot's messages were told apart by a "relay:"
-- prefix on the name, which is dropped.
ALTER TABLE agent_messages ADD COLUMN sender_kind TEXT NOT NULL DEFAULT 'agent';
UPDATE agent_messages SET sender_kind = 'relay_bot' WHERE automated = 1;
UPDATE agent_messages SET actor = substr(actor, 7) WHERE automated = 1 AND actor LIKE 'relay:%';

-- The people (page id + PSID) whose conversation the agents hold: no relay
-- bot starts a session with them until the agents let go (the relay bots'
-- own record, kept from the facts thread control hands them).
CREATE TABLE relay_holds (
    page_id TEXT   NOT NULL,
    psid    TEXT   NOT NULL,
    reason  TEXT   NOT NULL, -- forwarded | agent | declined
    since   BIGINT NOT NULL,
    PRIMARY KEY (page_id, psid)
);
-- The conversations the agents hold now (open or snoozed): the relay bots
-- used to ask the inbox, and now keep the record themselves.
INSERT INTO relay_holds (page_id, psid, reason, since)
    SELECT DISTINCT page_id, psid, 'agent', 0 FROM conversations
    WHERE psid <> '' AND status IN ('open', 'snoozed');
