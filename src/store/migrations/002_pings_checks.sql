-- Pings from cron and batch jobs (`/ping/<slug>...`), and the checks they belong to.

CREATE TABLE IF NOT EXISTS {db}.pings
(
    ts             DateTime64(3) CODEC(Delta, ZSTD(1)),
    check          LowCardinality(String),
    kind           Enum8('success' = 1, 'start' = 2, 'fail' = 3, 'exit_code' = 4),
    exit_code      Nullable(Int32),
    rid            String CODEC(ZSTD(1)),
    method         LowCardinality(String),
    source_ip      String CODEC(ZSTD(1)),
    user_agent     String CODEC(ZSTD(1)),
    body           String CODEC(ZSTD(3)),
    body_bytes     UInt32,
    body_truncated Bool
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (check, ts)
TTL toDateTime(ts) + INTERVAL {ttl:pings} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Checks are mutable state: append a new row per change, newest updated_at wins.
CREATE TABLE IF NOT EXISTS {db}.checks
(
    slug       String,
    name       String,
    source     Enum8('config' = 1, 'auto' = 2, 'api' = 3),
    deleted    Bool,
    updated_at DateTime64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY slug;
