import type { Fault } from '../../src/faults/index.js';

let n = 0;

/**
 * An open crash fault of api/api-1 with every field set, changed by `over`. Ids are unique within a test
 * process and start with `prefix`, so a test's faults are told apart from another file's in a shared log.
 */
export function faultFixture(prefix: string, over: Partial<Fault> = {}): Fault {
  n++;
  return {
    id: `${prefix}${String(n).padStart(19, '0')}`,
    kind: 'crash',
    state: 'open',
    service: 'api',
    instance: 'api-1',
    host: 'node-a',
    version: '1.0.0',
    check: '',
    signature: 'aaaaaaaaaaaaaaaa',
    startedAt: 0,
    detectedAt: 0,
    resolvedAt: null,
    explanation: 'x',
    evidence: [],
    causedBy: '',
    ruleId: 'crash',
    rulesVersion: 'v',
    occurrences: 1,
    ...over,
  };
}
