import { z } from 'zod';
import { DurationSchema } from '../config/duration.js';
import { FAULT_KINDS } from '../rules/schema.js';
import { cronProblem, zoneProblem } from '../detect/schedule.js';

/** Label matchers: every given label must equal (or, as `~regex`, match) the fault's label. */
export const MatchSchema = z.record(z.string().regex(/^[a-z_]+$/, 'a label name: kind, service, instance, host, version, check, signature, rule, escalated'), z.string());

export type Match = z.infer<typeof MatchSchema>;

const SupervisorBase = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'a name: lower-case letters, digits, "-", "_", "."'),
  /** OTP restart strategy: act on the failed child, on all children, or on it and those after it. */
  strategy: z.enum(['one_for_one', 'one_for_all', 'rest_for_one']).default('one_for_one'),
  /** The webhook endpoint (webhooks.endpoints[].name) that carries this supervisor's actions. */
  endpoint: z.string().optional(),
  /** Restart intensity: at most `intensity` actions per `period`; past it the fault escalates to the parent. */
  intensity: z.number().int().min(0).default(3),
  period: DurationSchema.prefault('10m'),
  /** Delay before a repeated action on one child: exponential, capped, reset after a stable period. */
  backoff: z
    .object({ initial: DurationSchema.prefault('0s'), max: DurationSchema.prefault('5m'), reset_after: DurationSchema.prefault('10m') })
    .strict()
    .prefault({}),
  /** The action's name in the webhook (`restart`, or your own). */
  action: z.string().default('restart'),
  /** A restart that did not bring the target back within this time failed, and escalates. */
  deadline: DurationSchema.prefault('2m'),
  /** Fault kinds this supervisor acts on (others just notify). */
  acts_on: z.array(z.enum(FAULT_KINDS)).default(['crash', 'oom', 'hang', 'crash_loop', 'failed_run', 'missed_run', 'run_too_long']),
});

/** A leaf: targets (by label matchers) or a check. */
export const WorkerSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'a name: lower-case letters, digits, "-", "_", "."'),
    match: MatchSchema.optional(),
    check: z.string().optional(),
    /** permanent: always restarted; transient: only after abnormal ends (crash, oom, hang); temporary: never. */
    restart: z.enum(['permanent', 'transient', 'temporary']).default('permanent'),
  })
  .strict()
  .refine((w) => (w.match ? 1 : 0) + (w.check ? 1 : 0) === 1, 'a worker has either `match` (targets) or `check`');

export type Worker = z.infer<typeof WorkerSchema>;

export type Supervisor = z.infer<typeof SupervisorBase> & { children: (Supervisor | Worker)[] };

export const SupervisorSchema: z.ZodType<Supervisor, unknown> = z.lazy(() =>
  SupervisorBase.extend({ children: z.array(z.union([WorkerSchema, SupervisorSchema])).min(1) }).strict(),
) as unknown as z.ZodType<Supervisor, unknown>;

export const isSupervisor = (c: Supervisor | Worker): c is Supervisor => 'children' in c;

/** An Alertmanager-style route: matchers, a receiver (webhook endpoint), grouping and timing. */
export interface Route {
  match?: Match;
  receiver?: string;
  continue: boolean;
  group_by?: string[];
  group_wait?: number;
  group_interval?: number;
  repeat_interval?: number;
  routes: Route[];
}

export const RouteSchema: z.ZodType<Route, unknown> = z.lazy(() =>
  z
    .object({
      match: MatchSchema.optional(),
      receiver: z.string().optional(),
      continue: z.boolean().default(false),
      group_by: z.array(z.string()).optional(),
      group_wait: DurationSchema.optional(),
      group_interval: DurationSchema.optional(),
      repeat_interval: DurationSchema.optional(),
      routes: z.array(RouteSchema).default([]),
    })
    .strict(),
) as unknown as z.ZodType<Route, unknown>;

/** A recurring maintenance window: faults matching `matchers` do not notify while it is open. */
export const MaintenanceSchema = z
  .object({
    name: z.string().min(1),
    matchers: MatchSchema,
    /** When each window opens (5-field cron, read in `tz`). */
    cron: z.string().refine((c) => cronProblem(c) === undefined, { message: 'an invalid cron expression' }),
    tz: z.string().refine((t) => zoneProblem(t) === undefined, { message: 'an unknown time zone' }).default('UTC'),
    duration: DurationSchema,
  })
  .strict();

export type Maintenance = z.infer<typeof MaintenanceSchema>;

export const EscalationSchema = z
  .object({
    /** Recurring windows (e.g. the Sunday 02:00 patching) during which matching faults do not notify. */
    maintenance: z.array(MaintenanceSchema).default([]),
    /** The supervision tree; faults of targets it does not cover go straight to people (the routes). */
    supervision: SupervisorSchema.optional(),
    /** Notification routing, like Alertmanager's: the root route catches everything. */
    routes: RouteSchema.optional(),
    /** Notify resolutions too. */
    send_resolved: z.boolean().default(true),
    /** A target whose faults open and resolve more than `changes` times in `window` is flapping: notified once. */
    flapping: z.object({ changes: z.number().int().min(2).default(6), window: DurationSchema.prefault('10m') }).strict().prefault({}),
  })
  .strict();

export type EscalationConfig = z.infer<typeof EscalationSchema>;

/** Defaults of the root route (Alertmanager's). */
export const ROUTE_DEFAULTS = { group_by: ['kind', 'service'], group_wait: 10_000, group_interval: 300_000, repeat_interval: 4 * 3_600_000 };

/** Every webhook endpoint the escalation config names, with where (for errors that point at the field). */
export function escalationEndpoints(e: EscalationConfig): { path: (string | number)[]; name: string }[] {
  const out: { path: (string | number)[]; name: string }[] = [];
  const walkSupervisor = (s: Supervisor, path: (string | number)[]) => {
    if (s.endpoint) out.push({ path: [...path, 'endpoint'], name: s.endpoint });
    s.children.forEach((c, i) => isSupervisor(c) && walkSupervisor(c, [...path, 'children', i]));
  };
  const walkRoute = (r: Route, path: (string | number)[]) => {
    if (r.receiver) out.push({ path: [...path, 'receiver'], name: r.receiver });
    r.routes.forEach((c, i) => walkRoute(c, [...path, 'routes', i]));
  };
  if (e.supervision) walkSupervisor(e.supervision, ['supervision']);
  if (e.routes) walkRoute(e.routes, ['routes']);
  return out;
}
