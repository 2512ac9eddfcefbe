-- Webhook deliveries. The outbox holds every event for every endpoint, rendered, written before its first
-- attempt; delivery_attempts is the append-only history of each delivery (every attempt, replay, expiry),
-- its newest rev being the current state (argMax over rev; never ALTER UPDATE). Ordered for the API:
-- deliveries of one endpoint over time, one delivery by id (bloom filter), one delivery's history.
-- Deliveries end within webhooks.endpoints[].max_age (at most 7 days): a month keeps the history to read.

CREATE TABLE IF NOT EXISTS {db}.delivery_outbox
(
    id           String,
    endpoint     LowCardinality(String),
    type         LowCardinality(String),
    created_at   DateTime64(3) CODEC(Delta, ZSTD(1)),
    occurred_at  DateTime64(3) CODEC(Delta, ZSTD(1)),
    deadline_at  DateTime64(3) CODEC(Delta, ZSTD(1)),
    template     LowCardinality(String),
    content_type LowCardinality(String),
    body         String CODEC(ZSTD(3)),
    INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (endpoint, created_at, id)
TTL toDateTime(created_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.delivery_attempts
(
    endpoint    LowCardinality(String),
    id          String,
    rev         UInt32,
    ts          DateTime64(3) CODEC(Delta, ZSTD(1)),
    event       Enum8('attempt' = 1, 'replay' = 2, 'disabled' = 3, 'expired' = 4, 'render_failed' = 5),
    attempt     UInt32,
    state       Enum8('pending' = 1, 'delivered' = 2, 'dead' = 3, 'disabled' = 4),
    status      UInt16,
    latency_ms  UInt32,
    error       String CODEC(ZSTD(3)),
    response    String CODEC(ZSTD(3)),
    next_at     DateTime64(3),
    deadline_at DateTime64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (endpoint, id, rev)
TTL toDateTime(ts) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Endpoints disabled by a 410 Gone (and enabled again by a replay), newest decision wins. The URL is kept
-- as a hash only (webhook URLs often carry a secret): a changed URL is a new endpoint, enabled.
CREATE TABLE IF NOT EXISTS {db}.delivery_endpoints
(
    name       String,
    url_hash   String,
    disabled   Bool,
    reason     String,
    updated_at DateTime64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name
SETTINGS non_replicated_deduplication_window = 1000;
