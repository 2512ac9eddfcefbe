-- Error rates over a whole cluster (README "Running more than one instance"). Spans are not relayed between
-- instances; each instance publishes, per service and closed bucket, how many spans it took and how many
-- failed, and the others read these rows back (by received_at, as they read the evidence), so a service's
-- owner judges its error rate from every instance's share. A bucket published again (spans that arrived
-- late) collapses by its key, the newest publication kept. Rows matter for seconds: they live an hour.
CREATE TABLE IF NOT EXISTS {db}.span_counts
(
    bucket_start    DateTime64(3),
    service         LowCardinality(String),
    counted_by      LowCardinality(String),
    spans           UInt32,
    errors          UInt32,
    peer_errors     Map(String, UInt32),
    host            LowCardinality(String),
    version         LowCardinality(String),
    sample_trace_id String,
    sample_span_id  String,
    sample_name     String,
    sample_at       DateTime64(3),
    sample_message  String CODEC(ZSTD(1)),
    published_at    DateTime64(3),
    received_at     DateTime64(3) DEFAULT now64(3),
    INDEX idx_received_at received_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(published_at)
PARTITION BY toStartOfHour(bucket_start)
ORDER BY (bucket_start, service, counted_by)
TTL toDateTime(bucket_start) + INTERVAL 1 HOUR
SETTINGS non_replicated_deduplication_window = 100, ttl_only_drop_parts = 1, merge_with_ttl_timeout = 1800;
