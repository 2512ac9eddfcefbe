-- Reads by signature and by fault. The signature list aggregated every fault on every call (seconds at a
-- million faults); signature_stats keeps each signature's statistics per service and version as faults are
-- written, so the list reads a few rows per signature. A fault's revisions all pass through the view: its
-- opening row (revision = its detection) counts it and opens it, its resolution (a later revision) closes
-- it; first/last seen come from its start, the same on every revision.
CREATE TABLE IF NOT EXISTS {db}.signature_stats
(
    signature   String,
    service     LowCardinality(String),
    version     LowCardinality(String),
    faults      SimpleAggregateFunction(sum, UInt64),
    open        SimpleAggregateFunction(sum, Int64),
    first_at    SimpleAggregateFunction(min, DateTime64(3)),
    last_at     SimpleAggregateFunction(max, DateTime64(3)),
    resolved_at SimpleAggregateFunction(max, DateTime64(3)),
    targets     AggregateFunction(groupUniqArray(100), String)
)
ENGINE = AggregatingMergeTree
ORDER BY (signature, service, version);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.signature_stats_mv TO {db}.signature_stats AS
SELECT signature, service, version,
       toUInt64(countIf(revision = toUInt64(toUnixTimestamp64Milli(detected_at)))) AS faults,
       toInt64(countIf(revision = toUInt64(toUnixTimestamp64Milli(detected_at)) AND state = 'open'))
         - toInt64(countIf(revision != toUInt64(toUnixTimestamp64Milli(detected_at)) AND state = 'resolved')) AS open,
       min(started_at) AS first_at, max(started_at) AS last_at,
       max(ifNull(resolved_at, toDateTime64(0, 3))) AS resolved_at,
       groupUniqArrayState(100)(if(instance = '', if(service = '', host, service), concat(service, '/', instance))) AS targets
FROM {db}.faults
GROUP BY signature, service, version;

-- The fill counts each fault's current state: merges may have collapsed its opening row already.
INSERT INTO {db}.signature_stats
SELECT signature, service, version, toUInt64(count()) AS faults, toInt64(countIf(state = 'open')) AS open,
       min(started_at) AS first_at, max(started_at) AS last_at,
       max(ifNull(resolved_at, toDateTime64(0, 3))) AS resolved_at,
       groupUniqArrayState(100)(if(instance = '', if(service = '', host, service), concat(service, '/', instance))) AS targets
FROM {db}.faults FINAL
GROUP BY signature, service, version;

-- A fault's supervisor actions, ordered by fault (the actions table is ordered by action id: every read of
-- one fault's actions scanned them all). Revisions of an action collapse on (fault_id, id) as in actions.
CREATE TABLE IF NOT EXISTS {db}.actions_by_fault
(
    id          String,
    fault_id    String,
    supervisor  LowCardinality(String),
    action      LowCardinality(String),
    strategy    LowCardinality(String),
    children    String CODEC(ZSTD(3)),
    budget_left UInt32,
    state       Enum8('pending' = 1, 'sent' = 2, 'succeeded' = 3, 'failed' = 4, 'escalated' = 5),
    detail      String CODEC(ZSTD(3)),
    created_at  DateTime64(3),
    updated_at  DateTime64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (fault_id, id)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.actions_by_fault_mv TO {db}.actions_by_fault AS
SELECT * FROM {db}.actions;

INSERT INTO {db}.actions_by_fault SELECT * FROM {db}.actions;

-- The faults a webhook delivery is about (a notification may group several), written with the delivery,
-- and a copy of the deliveries ordered by fault: a fault's deliveries were found by searching every body.
ALTER TABLE {db}.delivery_outbox ADD COLUMN IF NOT EXISTS fault_ids Array(String) DEFAULT [];

CREATE TABLE IF NOT EXISTS {db}.deliveries_by_fault
(
    fault_id   String,
    endpoint   LowCardinality(String),
    id         String,
    type       LowCardinality(String),
    created_at DateTime64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (fault_id, created_at, endpoint, id)
TTL toDateTime(created_at) + INTERVAL 30 DAY
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.deliveries_by_fault_mv TO {db}.deliveries_by_fault AS
SELECT arrayJoin(fault_ids) AS fault_id, endpoint, id, type, created_at FROM {db}.delivery_outbox;

-- Deliveries written before this migration name their faults only in their bodies: a fault id (20 hex
-- digits) as the value of an "id" or "fault_id" field.
INSERT INTO {db}.deliveries_by_fault
SELECT arrayJoin(arrayDistinct(extractAll(body, '"(?:fault_)?id"\\s*:\\s*"([0-9a-f]{20})"'))) AS fault_id, endpoint, id, type, created_at
FROM {db}.delivery_outbox;
