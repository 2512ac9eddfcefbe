import { z } from 'zod';
import type { Store } from '../store/index.js';

export const SIGNATURE_STATES = ['new', 'ongoing', 'resolved', 'regressed', 'muted'] as const;
export type SignatureState = (typeof SIGNATURE_STATES)[number];

export interface Occurrence {
  at: number;
  version: string;
  open: boolean;
  resolvedAt: number | null;
}

export interface UserState {
  state: 'active' | 'muted' | 'resolved';
  updatedAt: number;
  author: string;
  comment: string;
}

/** A signature is `new` for this long after it was first seen. */
export const NEW_FOR_MS = 24 * 3_600_000;
/** Without open faults and without occurrences for this long, a signature counts as resolved. */
export const QUIET_RESOLVES_MS = 24 * 3_600_000;

/**
 * The state of a signature from its occurrences (oldest first) and a person's decision:
 * muted > regressed (back after being resolved, or back in a newer version after all earlier faults were
 * resolved) > resolved > new > ongoing.
 */
export function signatureState(occ: Occurrence[], user: UserState | undefined, now: number): SignatureState {
  if (user?.state === 'muted') return 'muted';
  const last = occ[occ.length - 1];
  if (user?.state === 'resolved') return last && last.at > user.updatedAt ? 'regressed' : 'resolved';
  if (!last) return 'resolved';
  const firstOfLatestVersion = occ.find((o) => o.version === last.version)!;
  const earlier = occ.filter((o) => o.at < firstOfLatestVersion.at);
  if (
    last.version !== '' &&
    earlier.length > 0 &&
    !earlier.some((o) => o.version === last.version) &&
    earlier.every((o) => !o.open && o.resolvedAt !== null && o.resolvedAt <= firstOfLatestVersion.at)
  )
    return 'regressed';
  if (!occ.some((o) => o.open) && now - last.at > QUIET_RESOLVES_MS) return 'resolved';
  return now - occ[0].at < NEW_FOR_MS ? 'new' : 'ongoing';
}

/** What the detector keeps of a signature's past faults: enough to tell the moment it regresses. */
export interface SignatureHistory {
  /** The services and versions its faults were seen in, as serviceVersion() keys (bounded). */
  versions: Set<string>;
  /** Its faults open now. */
  open: number;
  /** When its latest fault began (ms). */
  lastAt: number;
}

export const serviceVersion = (service: string, version: string) => `${service}\u0000${version}`;

/**
 * Why a new fault of a known signature makes it regress, or undefined: the moment signatureState turns
 * `regressed`. Either a person marked it resolved and this is its first fault since, or a service it was
 * seen in is back with it in a version it was never seen in, after all its faults were resolved (the same
 * bug in another service is the bug spreading, not coming back). A muted signature never regresses.
 * `key` names the regression (the same for every fault of it), so it is told once.
 */
export function regression(before: SignatureHistory, user: UserState | undefined, fault: { at: number; service: string; version: string }): { reason: string; key: string } | undefined {
  if (user?.state === 'muted') return undefined;
  if (user?.state === 'resolved') {
    if (fault.at <= user.updatedAt || before.lastAt > user.updatedAt) return undefined;
    const by = user.author ? ` by ${user.author}` : '';
    return { reason: `back after it was marked resolved${by} at ${new Date(user.updatedAt).toISOString()}`, key: `resolved@${user.updatedAt}` };
  }
  const prefix = serviceVersion(fault.service, '');
  const earlier = [...before.versions].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  if (fault.version === '' || earlier.length === 0 || earlier.includes(fault.version) || before.open > 0) return undefined;
  const seen = earlier.filter(Boolean).join(', ') || 'no named version';
  return { reason: `back in ${fault.service} ${fault.version} after all its faults were resolved (seen before in ${seen})`, key: `version@${serviceVersion(fault.service, fault.version)}` };
}

/** A signature as the API answers with it (the schema documents the response). */
export const SignatureView = z.object({
  fingerprint: z.string(),
  kind: z.string(),
  title: z.string(),
  exception_type: z.string(),
  cause: z.string().describe('the normalised cause the fingerprint is made of'),
  state: z.enum(SIGNATURE_STATES),
  count: z.number().describe('faults'),
  open_faults: z.number(),
  first_seen: z.string().describe('ISO-8601 UTC time'),
  last_seen: z.string().describe('ISO-8601 UTC time'),
  targets: z.array(z.string()).describe('service/instance it struck (at most 100)'),
  versions: z.array(z.string()),
  muted_or_resolved_by: z.object({ author: z.string(), comment: z.string(), at: z.string() }).optional(),
});
export type SignatureView = z.infer<typeof SignatureView>;

/** One service and version of a signature, from signature_stats: [version, first, last (ms), faults, open, latest resolution (ms, 0: none)]. */
type VersionStats = [string, string, string, string, string, string];

interface Row {
  fingerprint: string;
  kind: string;
  title: string;
  exception_type: string;
  cause: string;
  versions: VersionStats[];
  targets: string[];
  user_state: string;
  user_at: string;
  author: string;
  comment: string;
}

/** Reads signatures with their statistics (kept by signature_stats as faults are written) and computed state. */
export class SignatureReader {
  constructor(private readonly store: Store) {}

  async list(opts: { kind?: string; service?: string; limit: number; fingerprint?: string }): Promise<SignatureView[]> {
    const db = this.store.database;
    const where: string[] = [];
    if (opts.kind) where.push('s.kind = {kind:String}');
    if (opts.fingerprint) where.push('s.fingerprint = {fp:String}');
    if (opts.service) where.push('has(f.services, {service:String})');
    // The page is the newest signatures by first sighting: without a service filter (which needs every
    // signature's statistics) only the candidates' statistics are aggregated. A candidate without faults
    // is left out, so a short page is read again with more candidates while there are more.
    const newest = !opts.fingerprint && !opts.service;
    const stats = opts.fingerprint
      ? `${db}.signature_stats WHERE signature = {fp:String}`
      : newest
        ? `${db}.signature_stats WHERE signature IN (SELECT fingerprint FROM ${db}.signatures FINAL ${opts.kind ? 'WHERE kind = {kind:String}' : ''} ORDER BY first_seen DESC LIMIT {pick:UInt32})`
        : `${db}.signature_stats`;
    const read = (pick: number) => this.store.query<Row>(
      `SELECT s.fingerprint AS fingerprint, s.kind AS kind, s.title AS title, s.exception_type AS exception_type, s.cause AS cause,
              f.versions AS versions, f.targets AS targets, u.state AS user_state, toUnixTimestamp64Milli(u.updated_at) AS user_at,
              u.author AS author, u.comment AS comment
       FROM (SELECT * FROM ${db}.signatures FINAL) AS s
       INNER JOIN (
         SELECT signature,
                groupArray((version, toString(toUnixTimestamp64Milli(first_at)), toString(toUnixTimestamp64Milli(last_at)), toString(faults),
                            toString(open), toString(toUnixTimestamp64Milli(resolved_at)))) AS versions,
                arraySlice(arrayDistinct(arrayFlatten(groupArray(targets))), 1, 100) AS targets,
                groupUniqArray(service) AS services
         FROM (
           SELECT signature, service, version, sum(faults) AS faults, sum(open) AS open, min(first_at) AS first_at, max(last_at) AS last_at,
                  max(resolved_at) AS resolved_at, groupUniqArrayMerge(100)(targets) AS targets
           FROM ${stats} GROUP BY signature, service, version
         ) WHERE faults > 0 GROUP BY signature
       ) AS f ON f.signature = s.fingerprint
       LEFT JOIN (SELECT * FROM ${db}.signature_states FINAL) AS u ON u.fingerprint = s.fingerprint
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY s.first_seen DESC LIMIT {limit:UInt32}`,
      { kind: opts.kind, fp: opts.fingerprint, service: opts.service, limit: opts.limit, pick },
    );
    let pick = opts.limit + 10;
    let rows = await read(pick);
    while (newest && rows.length < opts.limit && (await this.count(opts.kind)) > pick) rows = await read((pick *= 4));
    const now = Date.now();
    return rows.map((r) => view(r, now)).sort((a, b) => b.last_seen.localeCompare(a.last_seen));
  }

  private async count(kind?: string): Promise<number> {
    const [r] = await this.store.query<{ n: string }>(
      `SELECT count() AS n FROM ${this.store.database}.signatures FINAL ${kind ? 'WHERE kind = {kind:String}' : ''}`,
      { kind },
    );
    return Number(r?.n ?? 0);
  }

  /** What a signature is and a person's decision on it: what signature.regressed tells. */
  async regressionFacts(fingerprint: string): Promise<{ signature: Record<string, unknown>; user?: UserState } | undefined> {
    const db = this.store.database;
    const [r] = await this.store.query<{ fingerprint: string; kind: string; title: string; exception_type: string; cause: string; first_seen: string; user_state: string; user_at: string; author: string; comment: string }>(
      `SELECT s.fingerprint AS fingerprint, s.kind AS kind, s.title AS title, s.exception_type AS exception_type, s.cause AS cause,
              toUnixTimestamp64Milli(s.first_seen) AS first_seen, u.state AS user_state, toUnixTimestamp64Milli(u.updated_at) AS user_at,
              u.author AS author, u.comment AS comment
       FROM (SELECT * FROM ${db}.signatures FINAL WHERE fingerprint = {fp:String}) AS s
       LEFT JOIN (SELECT * FROM ${db}.signature_states FINAL WHERE fingerprint = {fp:String}) AS u ON u.fingerprint = s.fingerprint`,
      { fp: fingerprint },
    );
    if (!r) return undefined;
    const user: UserState | undefined =
      r.user_state && Number(r.user_at) > 0 ? { state: r.user_state as UserState['state'], updatedAt: Number(r.user_at), author: r.author, comment: r.comment } : undefined;
    return {
      signature: { fingerprint: r.fingerprint, kind: r.kind, title: r.title, exception_type: r.exception_type, cause: r.cause, first_seen: new Date(Number(r.first_seen)).toISOString(), state: 'regressed' },
      user,
    };
  }

  async setState(fingerprint: string, state: UserState['state'], author: string, comment: string): Promise<void> {
    const row = { fingerprint, state, updated_at: Date.now(), author, comment };
    await this.store.insertJsonLines('signature_states', `${JSON.stringify(row)}\n`, `sigstate:${fingerprint}:${row.updated_at}`);
  }
}

/**
 * A signature's occurrences as signatureState reads them, from its statistics per service and version: each
 * version's first and latest fault, open while any of its faults is, resolved at its latest resolution.
 * The state is the one its faults give, except that a version's faults are judged together: one seen again
 * after a newer version's first fault counts with its earlier faults.
 */
export function occurrencesOf(versions: VersionStats[]): { occ: Occurrence[]; count: number; open: number } {
  const byVersion = new Map<string, { first: number; last: number; faults: number; open: number; resolved: number }>();
  for (const [version, first, last, faults, open, resolved] of versions) {
    const v = byVersion.get(version) ?? { first: Infinity, last: -Infinity, faults: 0, open: 0, resolved: 0 };
    v.first = Math.min(v.first, Number(first));
    v.last = Math.max(v.last, Number(last));
    v.faults += Number(faults);
    v.open += Math.max(0, Number(open));
    v.resolved = Math.max(v.resolved, Number(resolved));
    byVersion.set(version, v);
  }
  const occ: Occurrence[] = [];
  let count = 0;
  let open = 0;
  for (const [version, v] of byVersion) {
    count += v.faults;
    open += v.open;
    const o = { version, open: v.open > 0, resolvedAt: v.open > 0 || v.resolved <= 0 ? null : v.resolved };
    occ.push({ ...o, at: v.first });
    if (v.last !== v.first) occ.push({ ...o, at: v.last });
  }
  return { occ: occ.sort((a, b) => a.at - b.at), count, open };
}

function view(r: Row, now: number): SignatureView {
  const { occ, count, open } = occurrencesOf(r.versions);
  const user: UserState | undefined =
    r.user_state && r.user_state !== '' && Number(r.user_at) > 0
      ? { state: r.user_state as UserState['state'], updatedAt: Number(r.user_at), author: r.author, comment: r.comment }
      : undefined;
  const versions = [...new Set(occ.map((o) => o.version).filter(Boolean))];
  return {
    fingerprint: r.fingerprint,
    kind: r.kind,
    title: r.title,
    exception_type: r.exception_type,
    cause: r.cause,
    state: signatureState(occ, user, now),
    count,
    open_faults: open,
    first_seen: new Date(occ[0]?.at ?? 0).toISOString(),
    last_seen: new Date(occ[occ.length - 1]?.at ?? 0).toISOString(),
    targets: r.targets.sort(),
    versions,
    ...(user && user.state !== 'active' ? { muted_or_resolved_by: { author: user.author, comment: user.comment, at: new Date(user.updatedAt).toISOString() } } : {}),
  };
}
