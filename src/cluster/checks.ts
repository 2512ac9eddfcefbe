import { CheckSchema } from '../config/schema.js';
import type { CheckMonitor } from '../detect/checks.js';
import type { CheckRegistry } from '../ingest/ping/checks.js';
import type { Logger } from '../log/index.js';
import type { CheckChanges } from './tail.js';

const FOLLOWED = 'check change followed from the store';

/**
 * What an instance does with check changes read back from the store (made through any instance's API):
 * the registry learns which slugs pings may name and what the API lists, the monitor the schedules and
 * pauses. Every change carries the time it was made; one no newer than what is known here (this instance's
 * own, or one read again) changes nothing. Checks of the config stay the config's.
 */
export function followCheckChanges(registry: CheckRegistry, monitor: CheckMonitor, log: Logger): (changes: CheckChanges) => void {
  return ({ checks, pauses }) => {
    for (const c of checks) {
      const now = registry.follow(c);
      if (now === undefined) continue;
      if (now === 'deleted') {
        monitor.forget(c.slug, c.at);
        log.info(FOLLOWED, { check: c.slug, change: 'deleted' });
        continue;
      }
      if (!now.input) continue;
      const spec = CheckSchema.safeParse(now.input);
      if (!spec.success) {
        log.error('a check changed through another instance does not validate here; it is not scheduled', { check: c.slug, error: spec.error.issues[0]?.message });
        continue;
      }
      monitor.define(spec.data, c.at);
      log.info(FOLLOWED, { check: c.slug, change: 'schedule' });
    }
    for (const p of pauses) {
      if (!(p.paused ? monitor.pause(p.slug, p.at) : monitor.resume(p.slug, p.at))) continue;
      log.info(FOLLOWED, { check: p.slug, change: p.paused ? 'paused' : 'resumed' });
    }
  };
}
