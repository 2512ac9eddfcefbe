-- One crash loop per service (README "Running more than one instance"): an exit whose target's owner finds
-- it part of a crash loop is handed to the owner of the service, which alone opens and revises the service's
-- crash loop. The hand-off is a row here, read by every instance's tail (received_at, the store's clock), so
-- the service's owner takes exactly the exits handed to it, and its successor finds them after a hand-over.
CREATE TABLE IF NOT EXISTS {db}.exit_handoffs
(
    exit_id        String,
    service        LowCardinality(String),
    instance       String,
    -- the exit's own time
    ts             DateTime64(3),
    -- the service's abnormal exits as the target's owner counted them (this one included)
    abnormal_exits UInt32,
    received_at    DateTime64(3) DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY received_at
TTL toDateTime(received_at) + INTERVAL 1 DAY;
