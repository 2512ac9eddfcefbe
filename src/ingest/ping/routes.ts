import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FaultlineError, badRequest } from '../../errors.js';
import type { IngestPipeline } from '../pipeline.js';
import type { CheckRegistry } from './checks.js';

type PingKind = 'success' | 'start' | 'fail' | 'exit_code';

export interface PingOptions {
  autoCreate: boolean;
  maxLogBytes: number;
}

const SLUG = /^[a-z0-9][a-z0-9_.-]{0,127}$/;

/**
 * The ping API for cron and batch jobs, Healthchecks-style: `/ping/<slug>` (success), `/start`, `/fail`,
 * `/<exit-code>` (0 is success), optional `?rid=<run id>`; GET, POST and HEAD. A POST body is kept as the
 * run's log, cut at `maxLogBytes`. Answers `OK` (200) once the ping is durable.
 */
export function pingRoutes(app: FastifyInstance, pipeline: IngestPipeline, checks: CheckRegistry, opts: PingOptions): void {
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
    pipeline.admit();
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
    if (rid.length > 128) throw badRequest('bad_rid', 'rid is longer than 128 characters');
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
  app.route({ method: methods, url: '/ping/:slug', handler: handler('success') });
  app.route({ method: methods, url: '/ping/:slug/start', handler: handler('start') });
  app.route({ method: methods, url: '/ping/:slug/fail', handler: handler('fail') });
  app.route({ method: methods, url: '/ping/:slug/:code', handler: handler('code') });
}
