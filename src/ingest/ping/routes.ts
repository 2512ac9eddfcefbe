import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { defineRoute, type RouteTable } from '../../api/route.js';
import { FaultlineError, badRequest } from '../../errors.js';
import { declaredBytes } from '../admission.js';
import type { IngestPipeline } from '../pipeline.js';
import type { CheckRegistry } from './checks.js';

type PingKind = 'success' | 'start' | 'fail' | 'exit_code';

export interface PingOptions {
  autoCreate: boolean;
  maxLogBytes: number;
}

const SLUG = /^[a-z0-9][a-z0-9_.-]{0,127}$/;

// Unknown query parameters are ignored (cache busters). Slug and code are checked by the handler, with the messages (and codes) ping clients have always had.
const SlugParams = z.object({ slug: z.string().describe('the check: lower-case letters, digits, "-", "_", "."') }).strict();
const CodeParams = z.object({ slug: z.string(), code: z.string().describe('the exit code of the run, 0-255 (0 is success)') }).strict();
const PingQuery = z.object({ rid: z.string().max(128, 'rid is at most 128 characters').optional().describe('run id: pairs a /start with its finish') });

/**
 * The ping API for cron and batch jobs, Healthchecks-style: `/ping/<slug>` (success), `/start`, `/fail`,
 * `/<exit-code>` (0 is success), optional `?rid=<run id>`; GET, POST and HEAD. A POST body is kept as the
 * run's log, cut at `maxLogBytes`. Answers `OK` (200) once the ping is durable.
 */
export function pingRoutes(table: RouteTable, pipeline: IngestPipeline, checks: CheckRegistry, opts: PingOptions): void {
  const methods = ['GET', 'POST', 'HEAD'] as ('GET' | 'POST' | 'HEAD')[];
  const handler = (kind: PingKind | 'code') => async (req: FastifyRequest<{ Params: { slug: string; code?: string } }>) => {
    const { slug } = req.params;
    let pingKind: PingKind = kind === 'code' ? 'exit_code' : kind;
    let exitCode: number | null = null;
    if (kind === 'code') {
      const code = req.params.code ?? '';
      if (!/^\d{1,3}$/.test(code) || Number(code) > 255)
        throw badRequest('bad_ping', `"${code}" is not a ping action: use start, fail, or an exit code 0-255`);
      exitCode = Number(code);
      if (exitCode === 0) pingKind = 'success';
    }
    if (!SLUG.test(slug)) throw badRequest('bad_slug', `"${slug}" is not a valid check slug (lower-case letters, digits, "-", "_", ".")`);
    if (!checks.has(slug)) {
      if (!opts.autoCreate)
        throw new FaultlineError(
          'unknown_check',
          404,
          `no check "${slug}": add it under "checks:" in the config, or set ping.auto_create: true (FAULTLINE_PING_AUTO_CREATE=1) to create checks on their first ping`,
        );
      await checks.create(slug, 'auto');
    }
    const rid = String((req.query as Record<string, unknown>)?.rid ?? '');
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const body = raw.subarray(0, opts.maxLogBytes).toString('utf8');
    await pipeline.rows(
      new Map([
        [
          'pings',
          [
            {
              ts: Date.now(),
              check: slug,
              kind: pingKind,
              exit_code: exitCode,
              rid,
              method: req.method,
              source_ip: req.ip,
              user_agent: String(req.headers['user-agent'] ?? '').slice(0, 512),
              body,
              body_bytes: raw.length,
              body_truncated: raw.length > opts.maxLogBytes,
            },
          ],
        ],
      ]),
    );
    pipeline.metrics.received.inc({ signal: 'pings' });
    return 'OK';
  };
  const rawBody = { contentTypes: ['text/plain', 'application/octet-stream'], description: `the run's log (kept up to ping.max_log_bytes)` };
  const admission = { enter: (req: FastifyRequest) => pipeline.enter('evidence', declaredBytes(req.headers)) };
  const common = { method: methods, tags: ['ping'], scope: 'ingest' as const, query: PingQuery, rawBody, admission, responses: { 200: { description: 'OK: the ping is durable', contentType: 'text/plain' } } };
  const as = (kind: PingKind | 'code') => ({ req }: { req: FastifyRequest }) => handler(kind)(req as FastifyRequest<{ Params: { slug: string; code?: string } }>);
  defineRoute(table, { ...common, url: '/ping/:slug', summary: 'A run of the check succeeded', params: SlugParams }, as('success'));
  defineRoute(table, { ...common, url: '/ping/:slug/start', summary: 'A run of the check started', params: SlugParams }, as('start'));
  defineRoute(table, { ...common, url: '/ping/:slug/fail', summary: 'A run of the check failed', params: SlugParams }, as('fail'));
  defineRoute(table, { ...common, url: '/ping/:slug/:code', summary: 'A run of the check ended with this exit code', params: CodeParams }, as('code'));
}
