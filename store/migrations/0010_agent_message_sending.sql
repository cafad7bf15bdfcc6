-- An agent message a sender is handing to the Send API right now (1) as
-- opposed to one merely waiting or backing off (0): a hand-back cancels the
-- waiting ones and waits for the ones being sent.
ALTER TABLE agent_messages ADD COLUMN sending BIGINT NOT NULL DEFAULT 0;
