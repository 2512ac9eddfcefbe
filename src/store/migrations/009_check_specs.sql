-- Checks created or changed through the API keep their schedule here (the JSON of a `checks[]` entry);
-- checks from the config keep theirs in the config, and checks created by a first ping have none.

ALTER TABLE {db}.checks ADD COLUMN IF NOT EXISTS spec String DEFAULT '' CODEC(ZSTD(1));
