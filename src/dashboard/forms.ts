import type { FastifyReply, FastifyRequest } from 'fastify';

/** A form post's fields (bodies arrive raw, see createApp). */
export function formBody(req: FastifyRequest): URLSearchParams {
  const body = req.body;
  return new URLSearchParams(Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : '');
}

/** A query string as plain strings (a repeated parameter keeps its first value). */
export function queryOf(req: FastifyRequest): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, unknown>)) out[k] = Array.isArray(v) ? String(v[0]) : v === undefined ? undefined : String(v);
  return out;
}

/**
 * Whether a form post comes from a page of this dashboard. Browsers send Origin with every POST; one from
 * another site is refused, so a page elsewhere cannot make a logged-in browser act (with the SameSite cookie).
 */
export function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin ?? req.headers.referer;
  if (!origin) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** Only paths of this site are followed after a form (never an open redirect). */
export function localPath(p: string | null | undefined, fallback: string): string {
  return p && p.startsWith('/') && !p.startsWith('//') && !p.includes('\\') ? p : fallback;
}

const FLASH = 'faultline_flash';

/** A one-time message for the next page (after a form's redirect). */
export function setFlash(reply: FastifyReply, kind: 'ok' | 'error', text: string): void {
  void reply.header('set-cookie', `${FLASH}=${encodeURIComponent(JSON.stringify({ kind, text: text.slice(0, 500) }))}; Path=/; Max-Age=60; HttpOnly; SameSite=Strict`);
}

export function takeFlash(req: FastifyRequest, reply: FastifyReply): { kind: 'ok' | 'error'; text: string } | undefined {
  const raw = cookie(req, FLASH);
  if (raw === undefined) return undefined;
  void reply.header('set-cookie', `${FLASH}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict`);
  try {
    const v = JSON.parse(raw) as { kind: 'ok' | 'error'; text: string };
    return v.kind === 'ok' || v.kind === 'error' ? { kind: v.kind, text: String(v.text) } : undefined;
  } catch {
    return undefined;
  }
}

export function cookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** "service=api" lines (or comma-separated) to silence matchers; a line without "=" is an error. */
export function parseMatchers(text: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const line of text.split(/[\n,]/).map((l) => l.trim()).filter(Boolean)) {
    const i = line.indexOf('=');
    if (i <= 0) return `"${line}" is not a matcher: write label=value, e.g. service=api`;
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

/** Silence lengths offered by the forms. */
export const SILENCE_DURATIONS = [
  { value: '30m', label: '30 minutes', ms: 30 * 60_000 },
  { value: '1h', label: '1 hour', ms: 3_600_000 },
  { value: '2h', label: '2 hours', ms: 2 * 3_600_000 },
  { value: '4h', label: '4 hours', ms: 4 * 3_600_000 },
  { value: '8h', label: '8 hours', ms: 8 * 3_600_000 },
  { value: '24h', label: '1 day', ms: 24 * 3_600_000 },
  { value: '7d', label: '7 days', ms: 7 * 24 * 3_600_000 },
];
