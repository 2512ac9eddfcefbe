import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NEW_FOR_MS, QUIET_RESOLVES_MS, signatureState, type Occurrence } from '../../src/faults/signatures.js';

const H = 3_600_000;
const now = 1_000 * H;
const occ = (hoursAgo: number, version: string, open = false, resolvedHoursAgo: number | null = open ? null : hoursAgo - 0.1): Occurrence => ({
  at: now - hoursAgo * H,
  version,
  open,
  resolvedAt: resolvedHoursAgo === null ? null : now - resolvedHoursAgo * H,
});

describe('signature state', () => {
  it('is new within a day of its first occurrence, ongoing after', () => {
    assert.equal(signatureState([occ(2, '1.0', true)], undefined, now), 'new');
    assert.equal(signatureState([occ(NEW_FOR_MS / H + 5, '1.0'), occ(1, '1.0', true)], undefined, now), 'ongoing');
  });

  it('is resolved when marked so, and regressed when it comes back after that', () => {
    const marked = { state: 'resolved' as const, updatedAt: now - 10 * H, author: 'ana', comment: 'fixed in 1.1' };
    assert.equal(signatureState([occ(30, '1.0')], marked, now), 'resolved');
    assert.equal(signatureState([occ(30, '1.0'), occ(2, '1.1', true)], marked, now), 'regressed');
  });

  it('resolves itself when nothing is open and it stayed quiet, and regresses in a newer version after that', () => {
    const quiet = QUIET_RESOLVES_MS / H + 10;
    assert.equal(signatureState([occ(quiet, '1.0')], undefined, now), 'resolved');
    assert.equal(signatureState([occ(quiet, '1.0'), occ(1, '1.2', true)], undefined, now), 'regressed', 'back in a new version after all its faults were resolved');
    assert.equal(signatureState([occ(quiet, '1.0', true), occ(1, '1.2', true)], undefined, now), 'ongoing', 'not regressed while the old fault is still open');
  });

  it('stays muted whatever happens', () => {
    const muted = { state: 'muted' as const, updatedAt: now - 50 * H, author: 'bo', comment: 'known, ticket 42' };
    assert.equal(signatureState([occ(60, '1.0'), occ(1, '2.0', true)], muted, now), 'muted');
  });
});
