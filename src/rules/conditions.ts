import type { Condition, Matcher } from './schema.js';

/** The facts a rule sees: nested plain objects (target, exit, memory, exceptions, service, host, check). */
export type Facts = Record<string, unknown>;

/** The value at a dotted path (`memory.near_limit`), or undefined. */
export function factAt(facts: Facts, path: string): unknown {
  let v: unknown = facts;
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

const regexCache = new Map<string, RegExp>();
const regex = (source: string) => {
  let r = regexCache.get(source);
  if (!r) regexCache.set(source, (r = new RegExp(source, 'i')));
  return r;
};

function loose(a: unknown, b: unknown): boolean {
  // YAML writes 137 and "137" alike; evidence may carry either.
  return a === b || (a !== null && b !== null && a !== undefined && String(a) === String(b));
}

export function matches(value: unknown, m: Matcher): boolean {
  if (m === null || typeof m !== 'object') return loose(value, m);
  const num = typeof value === 'number' ? value : Number.NaN;
  if (m.exists !== undefined && (value !== undefined && value !== null && value !== '') !== m.exists) return false;
  if (m.equals !== undefined && !loose(value, m.equals)) return false;
  if (m.not_equals !== undefined && loose(value, m.not_equals)) return false;
  if (m.in !== undefined && !m.in.some((x) => loose(value, x))) return false;
  if (m.matches !== undefined && !(typeof value === 'string' && regex(m.matches).test(value))) return false;
  if (m.gt !== undefined && !(num > m.gt)) return false;
  if (m.gte !== undefined && !(num >= m.gte)) return false;
  if (m.lt !== undefined && !(num < m.lt)) return false;
  if (m.lte !== undefined && !(num <= m.lte)) return false;
  return true;
}

/** Whether a condition holds for the facts (an absent condition always holds). */
export function holds(condition: Condition | undefined, facts: Facts): boolean {
  if (!condition) return true;
  if ('all' in condition && Array.isArray(condition.all)) return condition.all.every((c) => holds(c, facts));
  if ('any' in condition && Array.isArray(condition.any)) return condition.any.some((c) => holds(c, facts));
  if ('not' in condition && typeof condition.not === 'object' && !Array.isArray(condition.not)) return !holds(condition.not as Condition, facts);
  return Object.entries(condition as Record<string, Matcher>).every(([path, m]) => matches(factAt(facts, path), m));
}
