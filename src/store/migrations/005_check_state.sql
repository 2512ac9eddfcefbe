-- Checks paused and resumed through the API: append a row per change, newest updated_at wins (never
-- ALTER UPDATE). A resume's time is kept too: a resumed check is not judged for the time it was paused.

CREATE TABLE IF NOT EXISTS {db}.check_pauses
(
    slug       String,
    paused     Bool,
    updated_at DateTime64(3),
    author     String
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY slug;
