import { createHash, timingSafeEqual } from 'node:crypto';
import type { AuthConfig, Scope } from '../config/index.js';
import { FaultlineError } from '../errors.js';

export type { Scope };

/** The cookie a browser session carries the token in (set by the dashboard's login, HttpOnly). */
export const TOKEN_COOKIE = 'faultline_token';

/** What a route requires: one scope, any of several, or nothing (`open`: health probes, the docs). */
export type Requirement = Scope | readonly Scope[] | 'open';

/** The caller a request was authenticated as. */
export interface Caller {
  name: string;
  scopes: ReadonlySet<Scope>;
  /** Where the token came from: a browser session (cookie) or a client (header). */
  via: 'header' | 'cookie' | 'none';
}

/** Anyone on loopback when no tokens are configured: every scope. */
const LOOPBACK_CALLER: Caller = { name: 'loopback', scopes: new Set(['ingest', 'read', 'admin']), via: 'none' };

interface Token {
  name: string;
  digest: Buffer;
  scopes: ReadonlySet<Scope>;
}

/** The request fields auth reads: works for fastify requests and plain `IncomingMessage`s. */
export interface HasHeaders {
  headers: Record<string, string | string[] | undefined>;
}

const digest = (secret: string) => createHash('sha256').update(secret, 'utf8').digest();

/**
 * API tokens with scopes. A token is taken from `Authorization: Bearer <token>` or, for browsers, from the
 * `faultline_token` cookie. `admin` implies `read`. With no tokens configured every caller has every scope
 * (faultline then listens on loopback only; the config refuses anything else).
 */
export class Auth {
  private readonly tokens: Token[];

  constructor(config: AuthConfig) {
    this.tokens = config.tokens.map((t) => {
      if (t.token === undefined) throw new Error(`token "${t.name}" has no secret (token_env not resolved)`);
      const scopes = new Set<Scope>(t.scopes);
      if (scopes.has('admin')) scopes.add('read');
      return { name: t.name, digest: digest(t.token), scopes };
    });
  }

  /** Whether tokens are required at all. */
  get enabled(): boolean {
    return this.tokens.length > 0;
  }

  /** The caller behind a bearer secret, or undefined for an unknown one. Compared in constant time. */
  identifySecret(secret: string, via: Caller['via'] = 'header'): Caller | undefined {
    const d = digest(secret);
    let found: Token | undefined;
    // Every token is compared (no early exit) over fixed-length digests: timing says nothing about the secret.
    for (const t of this.tokens) if (timingSafeEqual(d, t.digest) && !found) found = t;
    return found && { name: found.name, scopes: found.scopes, via };
  }

  /**
   * The caller of a request: `LOOPBACK_CALLER` when auth is off, undefined when no token was sent,
   * `null` when the token sent is unknown.
   */
  identify(req: HasHeaders): Caller | undefined | null {
    if (!this.enabled) return LOOPBACK_CALLER;
    const sent = tokenOf(req);
    if (!sent) return undefined;
    return this.identifySecret(sent.secret, sent.via) ?? null;
  }

  /** Whether the request may do what `need` requires (for pages that decide without throwing). */
  allows(req: HasHeaders, need: Requirement): boolean {
    if (need === 'open') return true;
    const caller = this.identify(req);
    return !!caller && permits(caller, need);
  }

  /** The caller, or a 401 (no or unknown token) / 403 (token without the scope) in the one error shape. */
  require(req: HasHeaders, need: Requirement): Caller | undefined {
    if (need === 'open') return undefined;
    const caller = this.identify(req);
    if (caller === undefined)
      throw new FaultlineError('unauthorized', 401, `this needs a token with scope ${describe(need)}: send "Authorization: Bearer <token>"`);
    if (caller === null) throw new FaultlineError('unauthorized', 401, 'the token is not valid (unknown or revoked)');
    if (!permits(caller, need))
      throw new FaultlineError('forbidden', 403, `token "${caller.name}" lacks scope ${describe(need)} (it has: ${[...caller.scopes].join(', ')})`);
    return caller;
  }
}

function permits(caller: Caller, need: Scope | readonly Scope[]): boolean {
  return (typeof need === 'string' ? [need] : need).some((s) => caller.scopes.has(s));
}

export function describe(need: Requirement): string {
  if (need === 'open') return 'none';
  return typeof need === 'string' ? need : need.join(' or ');
}

/** The secret a request carries: the Authorization header first, then the session cookie. */
export function tokenOf(req: HasHeaders): { secret: string; via: 'header' | 'cookie' } | undefined {
  const header = first(req.headers.authorization);
  const bearer = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (bearer) return { secret: bearer[1], via: 'header' };
  const cookie = cookieValue(first(req.headers.cookie) ?? '', TOKEN_COOKIE);
  return cookie ? { secret: cookie, via: 'cookie' } : undefined;
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

function cookieValue(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim()) || undefined;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * The Set-Cookie value that logs a browser in with `secret` (HttpOnly: page scripts never see it;
 * SameSite=Strict: other sites cannot make the browser send it). `maxAgeS` 0 logs out.
 */
export function sessionCookie(secret: string, opts: { secure?: boolean; maxAgeS?: number } = {}): string {
  const maxAge = opts.maxAgeS ?? 7 * 86_400;
  return `${TOKEN_COOKIE}=${encodeURIComponent(maxAge === 0 ? '' : secret)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${opts.secure ? '; Secure' : ''}`;
}
