-- An agent message's sender_kind (0011) says whether a person sent it;
-- the automated flag it replaced is no longer written or read.
ALTER TABLE agent_messages DROP COLUMN automated;
