-- Escalation state: supervisor actions and silences, as append-only versioned rows (never ALTER UPDATE).

CREATE TABLE IF NOT EXISTS {db}.actions
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
ORDER BY id;

CREATE TABLE IF NOT EXISTS {db}.silences
(
    id         String,
    matchers   String,
    starts_at  DateTime64(3),
    ends_at    DateTime64(3),
    author     String,
    comment    String,
    deleted    Bool,
    updated_at DateTime64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;
