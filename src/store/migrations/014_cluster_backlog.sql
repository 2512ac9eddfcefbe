-- How far behind the store each instance's write-ahead log is (milliseconds, about): evidence it acknowledged
-- reaches the other instances only once written, so while one is behind, the others do not judge silences.
ALTER TABLE {db}.cluster_instances ADD COLUMN IF NOT EXISTS behind_ms UInt32 DEFAULT 0;
