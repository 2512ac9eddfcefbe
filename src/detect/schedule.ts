import { CronExpressionParser } from 'cron-parser';
import type { CheckConfig } from '../config/schema.js';

/** When a check's job should run: every `period` ms after its last ping, or on a cron schedule in a time zone. */
export type Schedule = Pick<CheckConfig, 'period' | 'cron' | 'tz'>;

/**
 * Why a cron expression is unusable, or undefined when it is fine. Only the classic 5 fields (minute, hour,
 * day of month, month, day of week; ranges, lists, steps, names) are accepted: cron-parser would also take
 * seconds or fewer fields, and its `H` (random) would make a schedule — and so fault ids — differ between runs.
 */
export function cronProblem(expr: string): string | undefined {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5) return `a cron expression has 5 fields (minute hour day-of-month month day-of-week); "${expr}" has ${fields.length}`;
  if (fields.some((f) => f.split(',').some((t) => /^H/i.test(t)))) return `"H" (random) is not supported in "${expr}"`;
  try {
    CronExpressionParser.parse(expr, { tz: 'UTC' }).next();
    return undefined;
  } catch (err) {
    return `invalid cron expression "${expr}": ${(err as Error).message}`;
  }
}

/** Why a time zone name is unusable (not an IANA zone this Node knows), or undefined. */
export function zoneProblem(tz: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return undefined;
  } catch {
    return `unknown time zone "${tz}": use an IANA name like UTC, Europe/Berlin, America/New_York`;
  }
}

function cron(s: Schedule, currentMs: number) {
  return CronExpressionParser.parse(s.cron!, { tz: s.tz ?? 'UTC', currentDate: currentMs });
}

/**
 * The first run due strictly after `afterMs`: for a period schedule `afterMs + period` (the period counts from
 * the last ping); for cron the next matching minute in the schedule's zone — across DST a local time that
 * does not exist runs once after the jump, one that exists twice runs once. Undefined for no schedule.
 */
export function nextRun(s: Schedule, afterMs: number): number | undefined {
  if (s.period !== undefined) return afterMs + s.period;
  if (s.cron !== undefined) return cron(s, afterMs).next().getTime();
  return undefined;
}

/** The last run due strictly before `beforeMs` (for a period schedule: `beforeMs - period`); undefined for no schedule. */
export function previousRun(s: Schedule, beforeMs: number): number | undefined {
  if (s.period !== undefined) return beforeMs - s.period;
  if (s.cron !== undefined) return cron(s, beforeMs).prev().getTime();
  return undefined;
}
