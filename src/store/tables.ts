/** The tables ingest writes to, in the order a batch writes them (evidence first, the derived targets last). */
export const TABLES = [
  'heartbeats',
  'exits',
  'spans',
  'exceptions',
  'logs',
  'metric_points',
  'pings',
  'checks',
  'target_sightings',
] as const;

export type TableName = (typeof TABLES)[number];
