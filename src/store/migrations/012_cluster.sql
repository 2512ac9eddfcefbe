-- More than one instance (README "Running more than one instance").
--
-- Membership: every instance appends a row here about once a second; the live set is the instances whose
-- newest heartbeat is younger than the lease. Revisions of one instance collapse by its id.
CREATE TABLE IF NOT EXISTS {db}.cluster_instances
(
    id           String,
    address      String,
    version      LowCardinality(String),
    started_at   DateTime64(3),
    heartbeat_at DateTime64(3),
    leaving      Bool
)
ENGINE = ReplacingMergeTree(heartbeat_at)
ORDER BY id
TTL toDateTime(heartbeat_at) + INTERVAL 7 DAY;

-- When the store took each row (its own clock), so an instance can read the evidence other instances took
-- since it last looked: the tail's cursor. The evidence tables are ordered by target, not by time; a minmax
-- index on received_at lets a tail skip every granule written before its cursor (merged parts only ever
-- hold rows received before the merge). Rows written before this migration read received_at as the time of
-- the read: the tail bounds every read by the evidence time too, so they are seen for a few minutes at most.
ALTER TABLE {db}.heartbeats ADD COLUMN IF NOT EXISTS received_at DateTime64(3) DEFAULT now64(3) CODEC(Delta, ZSTD(1));

ALTER TABLE {db}.heartbeats ADD INDEX IF NOT EXISTS idx_received_at received_at TYPE minmax GRANULARITY 1;

ALTER TABLE {db}.exits ADD COLUMN IF NOT EXISTS received_at DateTime64(3) DEFAULT now64(3) CODEC(Delta, ZSTD(1));

ALTER TABLE {db}.exits ADD INDEX IF NOT EXISTS idx_received_at received_at TYPE minmax GRANULARITY 1;

ALTER TABLE {db}.exceptions ADD COLUMN IF NOT EXISTS received_at DateTime64(3) DEFAULT now64(3) CODEC(Delta, ZSTD(1));

ALTER TABLE {db}.exceptions ADD INDEX IF NOT EXISTS idx_received_at received_at TYPE minmax GRANULARITY 1;

ALTER TABLE {db}.pings ADD COLUMN IF NOT EXISTS received_at DateTime64(3) DEFAULT now64(3) CODEC(Delta, ZSTD(1));

ALTER TABLE {db}.pings ADD INDEX IF NOT EXISTS idx_received_at received_at TYPE minmax GRANULARITY 1;

-- Which instance admitted an event to the outbox (it delivers it while it lives), and claims: an instance
-- that takes over a dead one's pending deliveries records that it did, newest claim wins, so the dead one
-- does not send them again when it comes back.
ALTER TABLE {db}.delivery_outbox ADD COLUMN IF NOT EXISTS instance LowCardinality(String) DEFAULT '';

CREATE TABLE IF NOT EXISTS {db}.delivery_claims
(
    endpoint   LowCardinality(String),
    id         String,
    instance   String,
    claimed_at DateTime64(3)
)
ENGINE = ReplacingMergeTree(claimed_at)
ORDER BY (endpoint, id)
TTL toDateTime(claimed_at) + INTERVAL 30 DAY;
