/** Rendezvous hashing: every key has one owner, shares are even, and a change of the live set moves only what it must. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ownerOf } from '../../src/cluster/index.js';

const keys = Array.from({ length: 6000 }, (_, i) => `svc-${i % 37}\u0000inst-${i}`);
const owners = (live: string[]) => new Map(keys.map((k) => [k, ownerOf(k, live)]));

describe('rendezvous ownership', () => {
  it('splits keys about evenly, the same whatever the order of the live set', () => {
    const live = ['fl-a', 'fl-b', 'fl-c'];
    const split = owners(live);
    assert.deepEqual(owners([...live].reverse()), split);
    for (const id of live) {
      const share = [...split.values()].filter((o) => o === id).length / keys.length;
      assert.ok(share > 0.28 && share < 0.39, `${id} owns ${(share * 100).toFixed(1)} %`);
    }
  });

  it('an instance leaving moves only its own keys; one joining takes keys only for itself', () => {
    const before = owners(['fl-a', 'fl-b', 'fl-c']);
    const left = owners(['fl-a', 'fl-c']);
    for (const [k, o] of before) if (o !== 'fl-b') assert.equal(left.get(k), o, 'kept by its owner');
    const joined = owners(['fl-a', 'fl-b', 'fl-c', 'fl-d']);
    let moved = 0;
    for (const [k, o] of before)
      if (joined.get(k) !== o) {
        assert.equal(joined.get(k), 'fl-d');
        moved++;
      }
    assert.ok(moved > keys.length * 0.2 && moved < keys.length * 0.3, `${moved} of ${keys.length} keys moved to the new instance`);
  });

  it('no live instance: no owner', () => {
    assert.equal(ownerOf('any', []), undefined);
  });
});
