-- When the store took each check change and each pause or resume (its own clock), so that every instance of
-- a cluster follows the checks created, changed, deleted, paused or resumed through another instance's API:
-- its tail reads the rows received since its cursor, as it reads evidence. Both tables are small (a row per
-- change), so no index. Rows written before this migration read received_at as the time of the read: the
-- tail bounds the read by updated_at too, so they are read again for an hour at most (and applied once: a
-- change no newer than what an instance knows is ignored).
ALTER TABLE {db}.checks ADD COLUMN IF NOT EXISTS received_at DateTime64(3) DEFAULT now64(3) CODEC(Delta, ZSTD(1));

ALTER TABLE {db}.check_pauses ADD COLUMN IF NOT EXISTS received_at DateTime64(3) DEFAULT now64(3) CODEC(Delta, ZSTD(1));
