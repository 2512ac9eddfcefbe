import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Durations as people write them in YAML: 500ms, 30s, 5m, 1h, 1d; parsed to milliseconds. */
export const DurationSchema = z
  .string()
  .regex(DURATION, 'a duration like 500ms, 30s, 5m, 1h')
  .transform((s) => {
    const [, n, unit] = DURATION.exec(s)!;
    return Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
  });
