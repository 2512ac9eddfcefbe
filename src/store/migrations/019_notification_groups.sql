-- The notification log (Alertmanager's nflog), kept in the outbox: with each notification, its group and
-- what the group has told once it is sent — the faults still firing, each "<fault id>:<state>:<e if
-- escalated>". A group lives in the memory of the instance that runs it; from the newest such row of each
-- (group, instance) another instance taking over its faults (or the same one after a restart) rebuilds it.
-- In the outbox row itself, so the told state is durable exactly when the notification is.

ALTER TABLE {db}.delivery_outbox ADD COLUMN IF NOT EXISTS group_key String DEFAULT '';

ALTER TABLE {db}.delivery_outbox ADD COLUMN IF NOT EXISTS told Array(String) DEFAULT [];

ALTER TABLE {db}.delivery_outbox ADD INDEX IF NOT EXISTS idx_group_key group_key TYPE bloom_filter(0.01) GRANULARITY 1;
