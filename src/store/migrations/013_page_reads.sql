-- Reads of the dashboard's pages that still scanned a whole table on a large store.
--
-- Deliveries by state. A delivery's state is its newest history row, so a list filtered by state (the
-- dead letters on the overview) computed the state of every delivery kept, then filtered. delivery_states
-- holds each final state a delivery entered (delivered, dead, disabled; pending ones are read from the
-- outbox: most were never attempted, so they have no history yet), ordered by state and then as the list is (newest created first), so
-- a page of dead letters reads the newest rows of the 'dead' range; the reader keeps those still in that
-- state (a replayed dead letter has a newer row elsewhere). A row collapses with the same state's earlier
-- rows of that delivery (retries) and keeps the newest rev. History rows carry their delivery's creation
-- time for it (the outbox's; the deliverer has it in hand when it writes one).
ALTER TABLE {db}.delivery_attempts ADD COLUMN IF NOT EXISTS created_at DateTime64(3) DEFAULT 0 CODEC(Delta, ZSTD(1));

CREATE TABLE IF NOT EXISTS {db}.delivery_states
(
    state      Enum8('pending' = 1, 'delivered' = 2, 'dead' = 3, 'disabled' = 4),
    created_at DateTime64(3),
    endpoint   LowCardinality(String),
    id         String,
    rev        UInt32
)
ENGINE = ReplacingMergeTree(rev)
PARTITION BY toYYYYMM(created_at)
ORDER BY (state, created_at, endpoint, id)
TTL toDateTime(created_at) + INTERVAL 30 DAY
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.delivery_states_mv TO {db}.delivery_states AS
SELECT state, created_at, endpoint, id, rev FROM {db}.delivery_attempts WHERE created_at > 0 AND state != 'pending';

-- History written before this migration takes its creation time from the outbox.
INSERT INTO {db}.delivery_states
SELECT a.state, o.created_at, a.endpoint, a.id, a.rev
FROM {db}.delivery_attempts AS a
JOIN (SELECT endpoint, id, min(created_at) AS created_at FROM {db}.delivery_outbox GROUP BY endpoint, id) AS o
  ON o.endpoint = a.endpoint AND o.id = a.id
WHERE a.state != 'pending';

-- Each delivery's current state, kept as history rows are written: reading a page's states from the
-- history read every granule of it (8192 rows each, a page's deliveries scattered over all of them);
-- here a delivery is one row (once merged) in small granules. The last attempt's status is the one with
-- the highest rev among attempts (other events weigh 0 and have no status).
CREATE TABLE IF NOT EXISTS {db}.delivery_summaries
(
    endpoint    LowCardinality(String),
    id          String,
    rev         SimpleAggregateFunction(max, UInt32),
    state       AggregateFunction(argMax, Enum8('pending' = 1, 'delivered' = 2, 'dead' = 3, 'disabled' = 4), UInt32),
    attempts    SimpleAggregateFunction(max, UInt32),
    next_at     AggregateFunction(argMax, DateTime64(3), UInt32),
    deadline_at AggregateFunction(argMax, DateTime64(3), UInt32),
    last_at     SimpleAggregateFunction(max, DateTime64(3)),
    last_status AggregateFunction(argMax, UInt16, UInt32),
    last_error  AggregateFunction(argMax, String, UInt32)
)
ENGINE = AggregatingMergeTree
ORDER BY (endpoint, id)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.delivery_summaries_mv TO {db}.delivery_summaries AS
SELECT a.endpoint AS endpoint, a.id AS id, max(a.rev) AS rev, argMaxState(a.state, a.rev) AS state, max(a.attempt) AS attempts,
       argMaxState(a.next_at, a.rev) AS next_at, argMaxState(a.deadline_at, a.rev) AS deadline_at,
       maxIf(a.ts, a.event = 'attempt') AS last_at, argMaxState(a.status, if(a.event = 'attempt', a.rev, 0)) AS last_status,
       argMaxState(a.error, a.rev) AS last_error
FROM {db}.delivery_attempts AS a
GROUP BY a.endpoint, a.id;

INSERT INTO {db}.delivery_summaries
SELECT endpoint, id, max(rev), argMaxState(state, rev), max(attempt), argMaxState(next_at, rev), argMaxState(deadline_at, rev),
       maxIf(ts, event = 'attempt'), argMaxState(status, if(event = 'attempt', rev, 0)), argMaxState(error, rev)
FROM {db}.delivery_attempts
GROUP BY endpoint, id;

-- Faults by signature. A signature's page (its occurrence histogram, its recent faults) and the fault list
-- filtered by signature read every fault's signature column, or skipped granules of faults_by_start by a
-- bloom filter that a common signature passes everywhere. This copy is ordered by signature and start
-- time, with the columns a page of the list is chosen on; revisions collapse on (signature, started_at, id).
CREATE TABLE IF NOT EXISTS {db}.faults_by_signature
(
    signature   String,
    started_at  DateTime64(3),
    id          String,
    revision    UInt64,
    state       Enum8('open' = 1, 'resolved' = 2),
    kind        LowCardinality(String),
    service     LowCardinality(String),
    instance    String,
    occurrences UInt32
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (signature, started_at, id)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.faults_by_signature_mv TO {db}.faults_by_signature AS
SELECT signature, started_at, id, revision, state, kind, service, instance, occurrences FROM {db}.faults;

INSERT INTO {db}.faults_by_signature
SELECT signature, started_at, id, revision, state, kind, service, instance, occurrences FROM {db}.faults;
