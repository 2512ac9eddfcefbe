-- How long each instance's inserts take lately, at worst (milliseconds): a row is stamped received_at when
-- its insert is parsed but others can read it only when the insert is done, so the other instances' tails
-- look back at least this far past their cursor.
ALTER TABLE {db}.cluster_instances ADD COLUMN IF NOT EXISTS insert_ms UInt32 DEFAULT 0;
