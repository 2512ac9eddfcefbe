-- Every target (service.name + service.instance.id) ever seen. Ingest inserts one sighting per target
-- per batch into a Null table; the view folds them into one aggregate row per target.

CREATE TABLE IF NOT EXISTS {db}.target_sightings
(
    service        String,
    instance       String,
    version        String,
    host           String,
    pid            UInt32,
    first_seen     DateTime64(9),
    last_seen      DateTime64(9),
    last_heartbeat DateTime64(9)
)
ENGINE = Null;

CREATE TABLE IF NOT EXISTS {db}.targets
(
    service        LowCardinality(String),
    instance       String,
    first_seen     SimpleAggregateFunction(min, DateTime64(9)),
    last_seen      SimpleAggregateFunction(max, DateTime64(9)),
    last_heartbeat SimpleAggregateFunction(max, DateTime64(9)),
    version        AggregateFunction(argMax, String, DateTime64(9)),
    host           AggregateFunction(argMax, String, DateTime64(9)),
    pid            AggregateFunction(argMax, UInt32, DateTime64(9))
)
ENGINE = AggregatingMergeTree
ORDER BY (service, instance);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.targets_mv TO {db}.targets AS
SELECT
    s.service                           AS service,
    s.instance                          AS instance,
    min(s.first_seen)                   AS first_seen,
    max(s.last_seen)                    AS last_seen,
    max(s.last_heartbeat)               AS last_heartbeat,
    argMaxState(s.version, s.last_seen) AS version,
    argMaxState(s.host, s.last_seen)    AS host,
    argMaxState(s.pid, s.last_seen)     AS pid
FROM {db}.target_sightings AS s
GROUP BY s.service, s.instance;
