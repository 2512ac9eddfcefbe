/**
 * The demo's two configuration files, derived from the schedule: faultline's (checks, a supervision tree
 * over the fleet, notification routes, detection tuned for a two-minute story) and the agent's (the
 * programs it runs under `faultline run`). Both are written into the demo's folder, where a reader can
 * look at them; faultline's is checked against its own schema before anything starts.
 */
import { join } from 'node:path';
import type { z } from 'zod';
import { ConfigSchema } from '../../src/config/index.js';
import { packageRoot } from '../../src/paths.js';
import { AgentFileSchema } from '../agent/config.js';
import { CRON, CRON_CHECK, FLEET, ROOT_DEADLINE_S, scaled } from './schedule.js';

export interface Ports {
  http: number;
  otlp: number;
  grpc: number;
  agent: number;
  people: number;
  payments: number;
}

const ms = (n: number) => `${Math.max(1, Math.round(n))}ms`;

/** The demo services heartbeat twice a second, so a hang is found in about two seconds. */
export const HEARTBEAT_MS = 500;

export function faultlineConfig(o: { dataDir: string; ports: Ports; secret: string; speed: number }): z.input<typeof ConfigSchema> {
  const s = (seconds: number) => ms(scaled(seconds, o.speed));
  return {
    data_dir: o.dataDir,
    server: { host: '127.0.0.1', http_port: o.ports.http, otlp_http_port: o.ports.otlp, otlp_grpc_port: o.ports.grpc },
    checks: [
      { slug: CRON_CHECK, name: 'Nightly report (the demo cron job)', period: s(CRON.period), grace: s(CRON.grace), max_runtime: s(CRON.maxRuntime) },
    ],
    rules: { file: join(packageRoot, 'collectors', 'demo', 'rules.yaml'), watch: false },
    detection: {
      // Until five intervals are known a target is silent after interval + grace: keep that short too.
      phi: { grace_ms: 2000 },
      // Error rates judged per second over two seconds, so a short outage of payments is seen.
      error_rate: { bucket_ms: 1000, window_buckets: 2, min_spans: 10, min_errors: 5 },
      // The leaking cache dies within seconds: fit the trend over a short window.
      resource: { lookback_ms: 6000, min_samples: 6 },
    },
    webhooks: {
      endpoints: [
        // The agent carries out supervisor actions; retried quickly, the demo is short.
        { name: 'agent', url: `http://127.0.0.1:${o.ports.agent}/actions`, secrets: [o.secret], template: 'generic', timeout: '5s', backoff: { initial: '200ms', max: '2s' } },
        { name: 'people', url: `http://127.0.0.1:${o.ports.people}/notify`, secrets: [o.secret], template: 'generic', timeout: '5s' },
      ],
    },
    escalation: {
      supervision: {
        name: 'root',
        endpoint: 'agent',
        intensity: 1,
        period: '10m',
        deadline: s(ROOT_DEADLINE_S),
        children: [
          {
            // api calls payments: when payments is restarted, api after it too (OTP's rest_for_one).
            name: 'shop',
            endpoint: 'agent',
            strategy: 'rest_for_one',
            intensity: 4,
            period: '5m',
            backoff: { initial: '5s', max: '10s', reset_after: '15s' },
            deadline: '30s',
            children: [
              { name: 'payments', match: { service: 'payments' } },
              { name: 'api', match: { service: 'api' } },
            ],
          },
          { name: 'jobs', endpoint: 'agent', intensity: 2, period: '5m', deadline: '30s', children: [{ name: 'worker', match: { service: 'worker' } }] },
          { name: 'storage', endpoint: 'agent', intensity: 2, period: '5m', deadline: '30s', children: [{ name: 'cache', match: { service: 'cache' } }] },
        ],
      },
      // Everything else (the gateways' host, the cron job) and whatever escalates past the root: people.
      routes: { receiver: 'people', group_by: ['kind', 'service'], group_wait: '1s', group_interval: '10s', repeat_interval: '4h' },
    },
  };
}

/** The agent's programs: the fleet, each a demo service started through `faultline run`. */
export function agentConfig(o: { ports: Ports; secret: string; speed: number; t0: number; node: string; service: string }): AgentConfig {
  return {
    listen: `127.0.0.1:${o.ports.agent}`,
    faultline: `http://127.0.0.1:${o.ports.http}`,
    otlp_endpoint: `http://127.0.0.1:${o.ports.otlp}`,
    secrets: [o.secret],
    // A deadlocked process ignores SIGTERM: the agent kills it after this long.
    stop_timeout: '2s',
    programs: FLEET.map((p) => ({
      name: p.name,
      service: p.service,
      instance: p.instance,
      command: [o.node, ...(p.nodeArgs ?? []), o.service],
      env: {
        DEMO_ROLE: p.role,
        DEMO_PROGRAM: p.name,
        DEMO_T0: String(o.t0),
        DEMO_SPEED: String(o.speed),
        DEMO_PAYMENTS_PORT: String(o.ports.payments),
        FAULTLINE_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
        ...(p.host ? { OTEL_RESOURCE_ATTRIBUTES: `host.name=${p.host}` } : {}),
      },
      // Restarts are the supervisors' decisions, carried out by the agent: the wrapper does not restart.
      restart: 'no' as const,
      run_args: ['--interval', `${HEARTBEAT_MS}ms`],
    })),
  };
}

export type AgentConfig = z.input<typeof AgentFileSchema> & { programs: { name: string }[] };

/** Validates the generated configs with faultline's and the agent's own schemas: a mistake here fails at once. */
export function checkConfigs(faultline: z.input<typeof ConfigSchema>, agent: AgentConfig): void {
  for (const [what, result] of [['faultline', ConfigSchema.safeParse(faultline)], ['agent', AgentFileSchema.safeParse(agent)]] as const)
    if (!result.success) throw new Error(`the demo's ${what} config is invalid: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
}
