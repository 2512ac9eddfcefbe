-- Reads by time. The fault list (newest first, filtered) and the post-mortem timeline (one time range) read
-- faults and their state changes by time, but faults and fault_events are ordered by fault id (where a
-- fault's revisions collapse), so every page read every fault, and a page's rows lay in as many granules
-- (of 8192 rows with their explanations and evidence) as it had faults. These copies are ordered by time,
-- the faults one in small granules (a page reads a few hundred rows, not a few hundred thousand), kept by
-- views on every insert and filled once from what is stored. A fault's start never changes, so
-- (started_at, id) still collapses its revisions. Deploys (a version's first sighting) come from versions,
-- one row per service and version, instead of a scan of every heartbeat.

CREATE TABLE IF NOT EXISTS {db}.faults_by_start
(
    id            String,
    revision      UInt64,
    kind          LowCardinality(String),
    state         Enum8('open' = 1, 'resolved' = 2),
    service       LowCardinality(String),
    instance      String,
    host          LowCardinality(String),
    version       LowCardinality(String),
    check         String,
    signature     String,
    started_at    DateTime64(3),
    detected_at   DateTime64(3),
    resolved_at   Nullable(DateTime64(3)),
    explanation   String CODEC(ZSTD(3)),
    evidence      String CODEC(ZSTD(3)),
    caused_by     String,
    rule_id       LowCardinality(String),
    rules_version LowCardinality(String),
    occurrences   UInt32,
    INDEX idx_signature signature TYPE bloom_filter(0.01) GRANULARITY 8
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(started_at)
ORDER BY (started_at, id)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.faults_by_start_mv TO {db}.faults_by_start AS
SELECT * FROM {db}.faults;

INSERT INTO {db}.faults_by_start SELECT * FROM {db}.faults;

-- The fault's start and detection ride along with each state change (time to detect, time to resolve).
ALTER TABLE {db}.fault_events ADD COLUMN IF NOT EXISTS started_at DateTime64(3) DEFAULT 0;

ALTER TABLE {db}.fault_events ADD COLUMN IF NOT EXISTS detected_at DateTime64(3) DEFAULT 0;

CREATE TABLE IF NOT EXISTS {db}.fault_events_by_time
(
    ts          DateTime64(3),
    fault_id    String,
    event       Enum8('opened' = 1, 'updated' = 2, 'resolved' = 3),
    kind        LowCardinality(String),
    service     LowCardinality(String),
    instance    String,
    detail      String CODEC(ZSTD(3)),
    started_at  DateTime64(3),
    detected_at DateTime64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, fault_id, event);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.fault_events_by_time_mv TO {db}.fault_events_by_time AS
SELECT ts, fault_id, event, kind, service, instance, detail, started_at, detected_at FROM {db}.fault_events;

INSERT INTO {db}.fault_events_by_time
SELECT e.ts, e.fault_id, e.event, e.kind, e.service, e.instance, e.detail, f.started_at, f.detected_at
FROM {db}.fault_events AS e
LEFT JOIN (SELECT id, min(started_at) AS started_at, min(detected_at) AS detected_at FROM {db}.faults GROUP BY id) AS f ON f.id = e.fault_id;

CREATE TABLE IF NOT EXISTS {db}.versions
(
    service    LowCardinality(String),
    version    LowCardinality(String),
    first_seen SimpleAggregateFunction(min, DateTime64(9))
)
ENGINE = AggregatingMergeTree
ORDER BY (service, version);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.versions_mv TO {db}.versions AS
SELECT s.service AS service, s.version AS version, min(s.first_seen) AS first_seen
FROM {db}.target_sightings AS s
WHERE s.version != ''
GROUP BY s.service, s.version;

INSERT INTO {db}.versions SELECT service, version, min(ts) FROM {db}.heartbeats WHERE version != '' GROUP BY service, version;
