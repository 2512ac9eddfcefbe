/**
 * Check schedules: period schedules count from the last ping; cron schedules are the classic 5 fields read
 * in the check's time zone, across daylight-saving changes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cronProblem, nextRun, previousRun, zoneProblem, type Schedule } from '../../src/detect/schedule.js';

const t = (iso: string) => Date.parse(iso);
const at = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
/** The next `n` runs after `fromIso`, as ISO strings. */
function runs(s: Schedule, fromIso: string, n: number): string[] {
  const out: string[] = [];
  let from = t(fromIso);
  for (let i = 0; i < n; i++) {
    from = nextRun(s, from)!;
    out.push(at(from)!);
  }
  return out;
}

describe('check schedules', () => {
  it('period: due one period after the given time; no schedule: never due', () => {
    assert.equal(nextRun({ period: 2000 }, 10_000), 12_000);
    assert.equal(previousRun({ period: 2000 }, 10_000), 8000);
    assert.equal(nextRun({}, 10_000), undefined);
    assert.equal(previousRun({}, 10_000), undefined);
  });

  it('cron: the next run is strictly after, the previous strictly before', () => {
    const daily: Schedule = { cron: '0 2 * * *' };
    assert.equal(at(nextRun(daily, t('2025-06-01T01:59:59Z'))), '2025-06-01T02:00:00.000Z');
    assert.equal(at(nextRun(daily, t('2025-06-01T02:00:00Z'))), '2025-06-02T02:00:00.000Z');
    assert.equal(at(previousRun(daily, t('2025-06-01T02:00:00Z'))), '2025-05-31T02:00:00.000Z');
    assert.equal(at(previousRun(daily, t('2025-06-01T02:00:00.001Z'))), '2025-06-01T02:00:00.000Z');
  });

  it('cron: ranges, lists, steps and names', () => {
    assert.deepEqual(runs({ cron: '*/20 9-10 * * *' }, '2025-06-02T08:00:00Z', 7), [
      '2025-06-02T09:00:00.000Z',
      '2025-06-02T09:20:00.000Z',
      '2025-06-02T09:40:00.000Z',
      '2025-06-02T10:00:00.000Z',
      '2025-06-02T10:20:00.000Z',
      '2025-06-02T10:40:00.000Z',
      '2025-06-03T09:00:00.000Z',
    ]);
    assert.deepEqual(runs({ cron: '15 4 1,15 * *' }, '2025-06-01T05:00:00Z', 3), [
      '2025-06-15T04:15:00.000Z',
      '2025-07-01T04:15:00.000Z',
      '2025-07-15T04:15:00.000Z',
    ]);
    // Weekdays of January and July only (2025-06-30 is a Monday).
    assert.deepEqual(runs({ cron: '0 0 * JAN,JUL MON-FRI' }, '2025-06-30T12:00:00Z', 3), [
      '2025-07-01T00:00:00.000Z',
      '2025-07-02T00:00:00.000Z',
      '2025-07-03T00:00:00.000Z',
    ]);
    // 7 is Sunday too.
    assert.equal(at(nextRun({ cron: '0 0 * * 7' }, t('2025-06-02T00:00:00Z'))), '2025-06-08T00:00:00.000Z');
  });

  it('cron: day of month and day of week both restricted means either (Vixie cron)', () => {
    // The 13th or any Friday: 2025-07-13 is a Sunday.
    assert.deepEqual(runs({ cron: '0 0 13 * FRI' }, '2025-07-01T00:00:00Z', 4), [
      '2025-07-04T00:00:00.000Z',
      '2025-07-11T00:00:00.000Z',
      '2025-07-13T00:00:00.000Z',
      '2025-07-18T00:00:00.000Z',
    ]);
  });

  it('cron in a time zone: local wall-clock times, across the spring-forward of Europe/Berlin', () => {
    // 2025-03-30 (last Sunday of March) 02:00 CET becomes 03:00 CEST.
    const nine: Schedule = { cron: '0 9 * * *', tz: 'Europe/Berlin' };
    assert.deepEqual(runs(nine, '2025-03-29T00:00:00Z', 3), [
      '2025-03-29T08:00:00.000Z', // 09:00 CET (UTC+1)
      '2025-03-30T07:00:00.000Z', // 09:00 CEST (UTC+2)
      '2025-03-31T07:00:00.000Z',
    ]);
    assert.equal(at(previousRun(nine, t('2025-03-30T07:00:00Z'))), '2025-03-29T08:00:00.000Z');
    // 02:30 does not exist that night: the run comes once, right after the jump (03:30 CEST).
    assert.deepEqual(runs({ cron: '30 2 * * *', tz: 'Europe/Berlin' }, '2025-03-28T12:00:00Z', 3), [
      '2025-03-29T01:30:00.000Z',
      '2025-03-30T01:30:00.000Z',
      '2025-03-31T00:30:00.000Z',
    ]);
    // Hourly: the hour that does not exist is skipped, not run twice.
    assert.deepEqual(runs({ cron: '0 * * * *', tz: 'Europe/Berlin' }, '2025-03-29T23:30:00Z', 3), [
      '2025-03-30T00:00:00.000Z', // 01:00 CET
      '2025-03-30T01:00:00.000Z', // 03:00 CEST
      '2025-03-30T02:00:00.000Z', // 04:00 CEST
    ]);
  });

  it('cron in a time zone: a wall-clock time that happens twice (fall-back) runs once', () => {
    // 2025-10-26 03:00 CEST becomes 02:00 CET: 02:30 happens twice.
    assert.deepEqual(runs({ cron: '30 2 * * *', tz: 'Europe/Berlin' }, '2025-10-25T12:00:00Z', 2), [
      '2025-10-26T00:30:00.000Z',
      '2025-10-27T01:30:00.000Z',
    ]);
    // Weekdays at 09:00 in New York across its own DST start (2025-03-09).
    assert.deepEqual(runs({ cron: '0 9 * * 1-5', tz: 'America/New_York' }, '2025-03-07T00:00:00Z', 2), [
      '2025-03-07T14:00:00.000Z',
      '2025-03-10T13:00:00.000Z',
    ]);
  });

  it('names what is wrong with an expression or a zone', () => {
    assert.equal(cronProblem('0 2 * * *'), undefined);
    assert.equal(cronProblem('*/5 1-3,7 1 JAN-MAR MON'), undefined);
    assert.match(cronProblem('0 0 2 * * *')!, /5 fields .* has 6/);
    assert.match(cronProblem('* * *')!, /has 3/);
    assert.match(cronProblem('61 2 * * *')!, /invalid cron expression "61 2 \* \* \*": .*0-59/);
    assert.match(cronProblem('0 2 30 2 *')!, /invalid cron expression/);
    assert.match(cronProblem('0 0 * * MOON')!, /invalid cron expression/);
    assert.match(cronProblem('H 2 * * *')!, /"H" \(random\) is not supported/);
    assert.equal(zoneProblem('Europe/Berlin'), undefined);
    assert.equal(zoneProblem('UTC'), undefined);
    assert.match(zoneProblem('Mars/Olympus_Mons')!, /unknown time zone "Mars\/Olympus_Mons"/);
  });
});
