import { z } from 'zod';
import { cronProblem, zoneProblem } from '../detect/schedule.js';
import { DurationSchema } from './duration.js';
import { EscalationSchema, escalationEndpoints } from '../escalate/config.js';
import { WebhooksSchema } from '../deliver/config.js';
import { ClusterSchema } from '../cluster/config.js';

const port = z.number().int().min(0).max(65535);
const bytes = z.number().int().positive();
const days = z.number().int().min(1).max(3650);

/** Retention (TTL) per evidence table, in days. */
export const RetentionSchema = z
  .object({
    heartbeats: days.default(14),
    exits: days.default(90),
    spans: days.default(7),
    exceptions: days.default(90),
    logs: days.default(7),
    metric_points: days.default(14),
    pings: days.default(90),
  })
  .strict();

export const ServerSchema = z
  .object({
    /** Address every listener binds to. */
    host: z.string().min(1).default('127.0.0.1'),
    http_port: port.default(8080),
    otlp_http_port: port.default(4318),
    otlp_grpc_port: port.default(4317),
    /** Largest request body accepted as sent on the wire (compressed). */
    max_body_bytes: bytes.default(16 * 1024 * 1024),
    /** Largest request body after gzip decompression: the guard against gzip bombs. */
    max_decompressed_bytes: bytes.default(64 * 1024 * 1024),
    /** A client must send all its request headers within this (slow clients, slowloris). */
    headers_timeout_ms: z.number().int().min(100).default(10_000),
    /** ... and the whole request, body included, within this. */
    request_timeout_ms: z.number().int().min(100).default(60_000),
    /** A connection with no traffic either way for this long is closed. */
    idle_timeout_ms: z.number().int().min(100).default(120_000),
    /** An idle keep-alive connection waits this long for its next request (above load balancers' 60 s). */
    keep_alive_timeout_ms: z.number().int().min(100).default(72_000),
  })
  .strict()
  .refine((s) => s.headers_timeout_ms <= s.request_timeout_ms, {
    path: ['headers_timeout_ms'],
    message: 'headers_timeout_ms must not exceed request_timeout_ms (the headers are part of the request)',
  });

export const StoreSchema = z
  .object({
    /** ClickHouse server URL; when absent the embedded chDB engine stores into `<data_dir>/clickhouse`. */
    clickhouse_url: z.url().optional(),
    user: z.string().default('default'),
    password: z.string().default(''),
    database: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a database name: letters, digits and underscores')
      .default('faultline'),
    retention_days: RetentionSchema.default(RetentionSchema.parse({})),
    /** Per-request timeout towards a ClickHouse server. */
    request_timeout_ms: z.number().int().positive().default(30_000),
  })
  .strict();

export const WriterSchema = z
  .object({
    /** A batch is written to the store when it holds this many rows ... */
    batch_rows: z.number().int().min(1).max(1_000_000).default(10_000),
    /** ... or when its oldest row has waited this long, whichever comes first. */
    flush_interval_ms: z.number().int().min(10).max(60_000).default(1000),
    /** Acknowledged rows not yet in the store (the write-ahead log on disk), in bytes; past it ingest sheds with 429/503. */
    max_wal_bytes: bytes.default(512 * 1024 * 1024),
    /** fsync the write-ahead log before acknowledging: survives power loss, not only `kill -9`. */
    fsync: z.boolean().default(false),
  })
  .strict();

/** Admission control for ingest (README "Durability and backpressure"): what is shed before it is read. */
export const IngestSchema = z
  .object({
    /**
     * New spans and metric points are answered 429 while the event loop (shared with the API and the
     * dashboard) is this late, smoothed over ~0.5 s; log records and pings at twice this. 0: never by delay.
     */
    max_event_loop_delay_ms: z.number().int().min(0).max(60_000).default(100),
    /** Ingest requests admitted and not yet answered, on all receivers together. */
    max_inflight_requests: z.number().int().min(1).default(256),
    /** Their declared body bytes (Content-Length, gRPC message size). */
    max_inflight_bytes: bytes.default(256 * 1024 * 1024),
    /** The Retry-After of a request shed for overload, in seconds. */
    retry_after_s: z.number().int().min(1).max(300).default(1),
  })
  .strict();

/**
 * A cron or batch job watched by pings. Its schedule is `period` (each run due that long after the last
 * ping) or `cron` + `tz` (each run due at the next matching time); either way a run is missed only after
 * `grace` more. A check with neither is never missed, but its failures and overlong runs still count.
 */
export const CheckFields = z
  .object({
    slug: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,127}$/, 'a slug: lower-case letters, digits, "-", "_", "."'),
    name: z.string().optional(),
    period: DurationSchema.refine((ms) => ms >= 1000, 'a period of at least 1s').optional(),
    /** 5 fields: minute hour day-of-month month day-of-week (ranges, lists, steps, names). */
    cron: z.string().optional(),
    /** IANA time zone the cron expression is read in; UTC when absent. */
    tz: z.string().optional(),
    grace: DurationSchema.prefault('5m'),
    /** A run still unfinished this long after its /start ping ran too long. */
    max_runtime: DurationSchema.prefault('1h'),
    /** Paused checks never raise faults (the API can pause and resume too). */
    paused: z.boolean().default(false),
  })
  .strict();

/** The rules a check's fields obey together (also applied to checks created through the API). */
export function checkScheduleRules(c: { period?: number; cron?: string; tz?: string }, ctx: z.RefinementCtx): void {
  const issue = (field: string, message: string) => ctx.addIssue({ code: 'custom', path: [field], message });
  if (c.period !== undefined && c.cron !== undefined) issue('cron', 'give either period or cron, not both');
  if (c.tz !== undefined && c.cron === undefined) issue('tz', 'tz applies to a cron schedule only');
  const cronError = c.cron === undefined ? undefined : cronProblem(c.cron);
  if (cronError) issue('cron', cronError);
  const tzError = c.tz === undefined ? undefined : zoneProblem(c.tz);
  if (tzError) issue('tz', tzError);
}

export const CheckSchema = CheckFields.superRefine(checkScheduleRules);
export type CheckConfig = z.infer<typeof CheckSchema>;

export const PingSchema = z
  .object({
    /** Create a check on its first ping instead of answering 404. */
    auto_create: z.boolean().default(false),
    /** The request body is kept as the run's log up to this many bytes; the rest is cut. */
    max_log_bytes: z.number().int().min(0).max(10 * 1024 * 1024).default(100_000),
  })
  .strict();

export const LimitsSchema = z
  .object({
    /** Attribute values and log bodies longer than this are cut (and the cut reported). */
    max_attribute_bytes: z.number().int().min(64).default(16 * 1024),
    /** Records stamped further than this in the future are rejected as absurd. */
    max_future_skew_s: z.number().int().min(0).default(24 * 3600),
    /** Records stamped further than this in the past are rejected as absurd. */
    max_age_days: z.number().int().min(1).default(365),
  })
  .strict();

const duration = z.number().int().min(0);

/** φ-accrual settings; every field may also be set per service under detection.services. */
export const PhiSchema = z
  .object({
    threshold: z.number().positive().default(8),
    min_std_dev_ms: duration.default(100),
    acceptable_pause_ms: duration.default(1500),
    max_samples: z.number().int().min(2).max(10_000).default(200),
    min_samples: z.number().int().min(1).default(5),
    /** Expected heartbeat interval when a heartbeat does not announce its own. */
    default_interval_ms: duration.default(10_000),
    /** Before enough samples exist: a target is silent after interval + grace. */
    grace_ms: duration.default(5_000),
  })
  .strict();

/** error_spike / dependency detection: error-span rate per service against its own baseline. */
export const ErrorRateSchema = z
  .object({
    bucket_ms: z.number().int().min(100).default(5000),
    window_buckets: z.number().int().min(1).max(60).default(3),
    min_spans: z.number().int().min(1).default(20),
    min_errors: z.number().int().min(1).default(10),
    factor: z.number().min(1).default(4),
    min_increase: z.number().min(0).max(1).default(0.2),
  })
  .strict();

/** resource_exhaustion prediction (the metering supervisor). */
export const ResourceSchema = z
  .object({
    lookback_ms: duration.default(120_000),
    min_samples: z.number().int().min(3).default(6),
    horizon_ms: duration.default(600_000),
    min_ratio: z.number().min(0).max(1).default(0.5),
    min_fit: z.number().min(0).max(1).default(0.8),
    refute_after_ms: duration.default(120_000),
  })
  .strict();

export const DetectionSchema = z
  .object({
    phi: PhiSchema.prefault({}),
    error_rate: ErrorRateSchema.prefault({}),
    resource: ResourceSchema.prefault({}),
    services: z.record(z.string(), PhiSchema.partial().strict()).default({}),
    /** When this share of all targets, on several hosts, falls silent at once, faultline suspects itself first. */
    mass_silence_ratio: z.number().min(0).max(1).default(0.5),
    mass_silence_hold_ms: duration.default(30_000),
    /** After a restart, targets known from before are not judged silent for this long (collectors' retries catch up). */
    restart_grace_ms: duration.default(10_000),
  })
  .strict();

export const RulesConfigSchema = z
  .object({
    /** Your rules file: overrides, disables or adds to the built-in rules (see README). */
    file: z.string().optional(),
    /** Reload the rules file when it changes. */
    watch: z.boolean().default(true),
  })
  .strict();

export const SCOPES = ['ingest', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/**
 * One API token. The secret is given inline (`token`) or, better, named by an environment variable
 * (`token_env`) so it stays out of the file; it is never logged.
 */
export const TokenSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a name: letters, digits, "-", "_", "." (shown in logs instead of the secret)'),
    token: z.string().min(16, 'a token of at least 16 characters (e.g. `openssl rand -hex 24`)').max(512).optional(),
    token_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
    scopes: z.array(z.enum(SCOPES)).min(1, 'at least one scope: ingest, read or admin'),
  })
  .strict()
  .refine((t) => (t.token === undefined) !== (t.token_env === undefined), { message: 'give either token or token_env, not both', path: ['token'] });
export type TokenConfig = z.infer<typeof TokenSchema>;

/** API tokens (README "Authentication"). With none, faultline serves on loopback only. */
export const AuthSchema = z.object({ tokens: z.array(TokenSchema).default([]) }).strict();

/** Addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export const ConfigSchema = z
  .object({
    data_dir: z.string().min(1).default('./data'),
    log_level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    server: ServerSchema.default(ServerSchema.parse({})),
    store: StoreSchema.default(StoreSchema.parse({})),
    writer: WriterSchema.default(WriterSchema.parse({})),
    ingest: IngestSchema.default(IngestSchema.parse({})),
    ping: PingSchema.default(PingSchema.parse({})),
    checks: z.array(CheckSchema).default([]),
    limits: LimitsSchema.default(LimitsSchema.parse({})),
    detection: DetectionSchema.prefault({}),
    rules: RulesConfigSchema.prefault({}),
    /** Supervision tree, notification routes, flapping (README "Escalation"). */
    escalation: EscalationSchema.prefault({}),
    webhooks: WebhooksSchema.prefault({}),
    auth: AuthSchema.prefault({}),
    /** Several instances on one store (README "Running more than one instance"); absent: this one alone. */
    cluster: ClusterSchema.optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    // Every endpoint escalation names must be a configured webhook endpoint: found at load, not at 3 a.m.
    const endpoints = new Set(cfg.webhooks.endpoints.map((e) => e.name));
    for (const { path, name } of escalationEndpoints(cfg.escalation))
      if (!endpoints.has(name))
        ctx.addIssue({
          code: 'custom',
          path: ['escalation', ...path],
          message: `"${name}" is not an endpoint under webhooks.endpoints${endpoints.size ? ` (there: ${[...endpoints].join(', ')})` : ''}`,
        });
    const ports = [
      ['http_port', cfg.server.http_port],
      ['otlp_http_port', cfg.server.otlp_http_port],
      ['otlp_grpc_port', cfg.server.otlp_grpc_port],
    ] as const;
    for (let i = 0; i < ports.length; i++)
      for (let j = i + 1; j < ports.length; j++)
        if (ports[i][1] !== 0 && ports[i][1] === ports[j][1])
          ctx.addIssue({
            code: 'custom',
            path: ['server', ports[j][0]],
            message: `port ${ports[j][1]} is already used by server.${ports[i][0]}`,
          });
    // Without tokens anyone who can reach a listener may read faults and change state: loopback only.
    if (cfg.auth.tokens.length === 0 && !isLoopback(cfg.server.host))
      ctx.addIssue({
        code: 'custom',
        path: ['server', 'host'],
        message: `faultline binds to "${cfg.server.host}", reachable from other machines, but no API tokens are configured: add auth.tokens (README "Authentication") or bind to 127.0.0.1`,
      });
    // Instances share the work through their store: one that only they can reach shares nothing.
    if (cfg.cluster && !cfg.store.clickhouse_url)
      ctx.addIssue({
        code: 'custom',
        path: ['cluster'],
        message: 'several instances share one ClickHouse server: set store.clickhouse_url (FAULTLINE_CLICKHOUSE_URL); the embedded store belongs to one process',
      });
    const names = new Set<string>();
    cfg.auth.tokens.forEach((t, i) => {
      if (names.has(t.name)) ctx.addIssue({ code: 'custom', path: ['auth', 'tokens', i, 'name'], message: `duplicate token name "${t.name}"` });
      names.add(t.name);
    });
    const slugs = new Set<string>();
    cfg.checks.forEach((c, i) => {
      if (slugs.has(c.slug)) ctx.addIssue({ code: 'custom', path: ['checks', i, 'slug'], message: `duplicate check slug "${c.slug}"` });
      slugs.add(c.slug);
    });
  });

export type Config = z.infer<typeof ConfigSchema>;
export type Retention = z.infer<typeof RetentionSchema>;
export type AuthConfig = z.infer<typeof AuthSchema>;
