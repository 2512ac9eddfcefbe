-- Raw evidence sent by collectors. Every table is ordered for the lookups faultline makes most:
-- one target over a time range. Timestamps are DateTime64(9) (OTLP's nanoseconds, kept exactly).
-- {db} and {ttl:<table>} are filled in by the migration runner; retention is changed later by ALTER.

CREATE TABLE IF NOT EXISTS {db}.heartbeats
(
    ts                     DateTime64(9) CODEC(DoubleDelta, ZSTD(1)),
    service                LowCardinality(String),
    instance               LowCardinality(String),
    version                LowCardinality(String),
    host                   LowCardinality(String),
    pid                    UInt32 CODEC(ZSTD(1)),
    interval_ms            Nullable(UInt32),
    rss_bytes              Nullable(UInt64) CODEC(ZSTD(1)),
    memory_limit_bytes     Nullable(UInt64) CODEC(ZSTD(1)),
    heap_used_bytes        Nullable(UInt64) CODEC(ZSTD(1)),
    cpu_utilization        Nullable(Float32) CODEC(ZSTD(1)),
    eventloop_delay_p99_ms Nullable(Float32) CODEC(ZSTD(1)),
    attributes             Map(LowCardinality(String), String) CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, ts)
TTL toDateTime(ts) + INTERVAL {ttl:heartbeats} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS {db}.exits
(
    ts                   DateTime64(9) CODEC(Delta, ZSTD(1)),
    service              LowCardinality(String),
    instance             LowCardinality(String),
    version              LowCardinality(String),
    host                 LowCardinality(String),
    pid                  UInt32,
    exit_code            Nullable(Int32),
    signal               LowCardinality(String),
    reason               LowCardinality(String),
    intended             Bool,
    exception_type       LowCardinality(String),
    exception_message    String CODEC(ZSTD(3)),
    exception_stacktrace String CODEC(ZSTD(3)),
    stderr_tail          String CODEC(ZSTD(3)),
    runtime_ms           Nullable(UInt64),
    max_rss_bytes        Nullable(UInt64),
    trace_id             String CODEC(ZSTD(1)),
    span_id              String CODEC(ZSTD(1)),
    attributes           Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    INDEX idx_exception_type exception_type TYPE set(256) GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (service, instance, ts)
TTL toDateTime(ts) + INTERVAL {ttl:exits} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.spans
(
    ts                  DateTime64(9) CODEC(Delta, ZSTD(1)),
    trace_id            String CODEC(ZSTD(1)),
    span_id             String CODEC(ZSTD(1)),
    parent_span_id      String CODEC(ZSTD(1)),
    trace_state         String CODEC(ZSTD(1)),
    service             LowCardinality(String),
    instance            LowCardinality(String),
    version             LowCardinality(String),
    host                LowCardinality(String),
    name                LowCardinality(String),
    kind                Enum8('unspecified' = 0, 'internal' = 1, 'server' = 2, 'client' = 3, 'producer' = 4, 'consumer' = 5),
    duration_ns         UInt64 CODEC(T64, ZSTD(1)),
    status_code         Enum8('unset' = 0, 'ok' = 1, 'error' = 2),
    status_message      String CODEC(ZSTD(1)),
    scope_name          LowCardinality(String),
    scope_version       LowCardinality(String),
    attributes          Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    events              Nested(ts DateTime64(9), name LowCardinality(String), attributes Map(LowCardinality(String), String)),
    links               Nested(trace_id String, span_id String, attributes Map(LowCardinality(String), String)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_status status_code TYPE set(3) GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, ts)
TTL toDateTime(ts) + INTERVAL {ttl:spans} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

-- Exceptions from span events, exception logs and exit records, one row each, so the rules engine finds
-- "every occurrence of this exception type" without scanning spans.
CREATE TABLE IF NOT EXISTS {db}.exceptions
(
    ts             DateTime64(9) CODEC(Delta, ZSTD(1)),
    service        LowCardinality(String),
    instance       LowCardinality(String),
    version        LowCardinality(String),
    host           LowCardinality(String),
    source         Enum8('span' = 1, 'log' = 2, 'exit' = 3),
    exception_type LowCardinality(String),
    message        String CODEC(ZSTD(3)),
    stacktrace     String CODEC(ZSTD(3)),
    trace_id       String CODEC(ZSTD(1)),
    span_id        String CODEC(ZSTD(1)),
    span_name      LowCardinality(String),
    attributes     Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    INDEX idx_instance instance TYPE set(1024) GRANULARITY 4,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (service, exception_type, ts)
TTL toDateTime(ts) + INTERVAL {ttl:exceptions} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.logs
(
    ts                  DateTime64(9) CODEC(Delta, ZSTD(1)),
    observed_ts         DateTime64(9) CODEC(Delta, ZSTD(1)),
    service             LowCardinality(String),
    instance            LowCardinality(String),
    version             LowCardinality(String),
    host                LowCardinality(String),
    severity_number     UInt8,
    severity_text       LowCardinality(String),
    event_name          LowCardinality(String),
    body                String CODEC(ZSTD(3)),
    trace_id            String CODEC(ZSTD(1)),
    span_id             String CODEC(ZSTD(1)),
    flags               UInt32,
    scope_name          LowCardinality(String),
    attributes          Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_severity severity_number TYPE minmax GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, instance, ts)
TTL toDateTime(ts) + INTERVAL {ttl:logs} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS {db}.metric_points
(
    ts                  DateTime64(9) CODEC(DoubleDelta, ZSTD(1)),
    start_ts            DateTime64(9) CODEC(DoubleDelta, ZSTD(1)),
    service             LowCardinality(String),
    instance            LowCardinality(String),
    host                LowCardinality(String),
    name                LowCardinality(String),
    type                Enum8('gauge' = 1, 'sum' = 2, 'histogram' = 3, 'exponential_histogram' = 4, 'summary' = 5),
    unit                LowCardinality(String),
    temporality         Enum8('unspecified' = 0, 'delta' = 1, 'cumulative' = 2),
    monotonic           Bool,
    value               Float64 CODEC(Gorilla, ZSTD(1)),
    count               UInt64 CODEC(T64, ZSTD(1)),
    sum                 Float64 CODEC(Gorilla, ZSTD(1)),
    min                 Nullable(Float64),
    max                 Nullable(Float64),
    bucket_counts       Array(UInt64) CODEC(ZSTD(1)),
    explicit_bounds     Array(Float64) CODEC(ZSTD(1)),
    attributes          Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (service, name, instance, ts)
TTL toDateTime(ts) + INTERVAL {ttl:metric_points} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;
