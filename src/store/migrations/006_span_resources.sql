-- A span's resource attributes are the same for every span of a process. Ingest sends each distinct set
-- once, keyed by a hash (resource_id), instead of on every span row; the store fills a span's
-- resource_attributes from it as the span is inserted, so every span still holds its own copy (reads and
-- old rows are unchanged, and the spans do not depend on this table once written). A row that carries
-- resource_attributes itself (older write-ahead logs) keeps them.
-- The lookup table is a Join (an in-memory hash table, kept on disk): ANY, so the first row of an id wins;
-- an id is a hash of the attributes, so repeated rows of an id are the same.

CREATE TABLE IF NOT EXISTS {db}.otlp_resources
(
    id         UInt64,
    attributes Map(LowCardinality(String), String)
)
ENGINE = Join(ANY, LEFT, id);

ALTER TABLE {db}.spans ADD COLUMN IF NOT EXISTS resource_id UInt64 CODEC(ZSTD(1)) AFTER scope_version;

ALTER TABLE {db}.spans MODIFY COLUMN resource_attributes Map(LowCardinality(String), String)
    DEFAULT joinGet('{db}.otlp_resources', 'attributes', resource_id) CODEC(ZSTD(1));
