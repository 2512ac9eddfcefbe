/**
 * Rendezvous (highest-random-weight) hashing: a key belongs to the instance whose hash of (instance, key)
 * is highest. Every instance computes the same owner from the same live set, with no coordination; when an
 * instance leaves only its keys move (each to the next-highest), and one that joins takes about 1/n of the
 * keys from the others, none between the others.
 */
export function ownerOf(key: string, instances: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const id of instances) {
    const w = weight(id, key);
    if (w > bestWeight || (w === bestWeight && best !== undefined && id < best)) {
      best = id;
      bestWeight = w;
    }
  }
  return best;
}

/** A 53-bit hash of (instance, key) (cyrb53: two 32-bit multiplicative lanes), the same on every platform. */
export function weight(instance: string, key: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  const mix = (code: number) => {
    h1 = Math.imul(h1 ^ code, 2654435761);
    h2 = Math.imul(h2 ^ code, 1597334677);
  };
  for (let i = 0; i < instance.length; i++) mix(instance.charCodeAt(i));
  mix(0);
  for (let i = 0; i < key.length; i++) mix(key.charCodeAt(i));
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
