-- Faults and signatures: derived state, kept as append-only versioned rows (never ALTER UPDATE). A fault's
-- current state is the row with the highest revision; signature statistics are computed from faults.

CREATE TABLE IF NOT EXISTS {db}.faults
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
    occurrences   UInt32
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY id;

-- One row per state change of a fault (opened, updated, resolved): the post-mortem timeline.
CREATE TABLE IF NOT EXISTS {db}.fault_events
(
    ts       DateTime64(3),
    fault_id String,
    event    Enum8('opened' = 1, 'updated' = 2, 'resolved' = 3),
    kind     LowCardinality(String),
    service  LowCardinality(String),
    instance String,
    detail   String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
ORDER BY (fault_id, ts, event);

-- What a signature is (its normalised cause and a sample), written when first seen.
CREATE TABLE IF NOT EXISTS {db}.signatures
(
    fingerprint    String,
    kind           LowCardinality(String),
    exception_type String,
    title          String,
    cause          String CODEC(ZSTD(3)),
    sample_message String CODEC(ZSTD(3)),
    sample_stack   String CODEC(ZSTD(3)),
    first_seen     DateTime64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY fingerprint;

-- A person's decisions about a signature (muted, resolved), newest wins.
CREATE TABLE IF NOT EXISTS {db}.signature_states
(
    fingerprint String,
    state       Enum8('active' = 0, 'muted' = 1, 'resolved' = 2),
    updated_at  DateTime64(3),
    author      String,
    comment     String
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY fingerprint;
