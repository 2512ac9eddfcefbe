import { z } from 'zod';
import { DurationSchema } from '../config/duration.js';

/** Fault kinds of DESIGN.md, plus `none`: a rule that decides "this is not a fault" (graceful exits, deploys). */
export const FAULT_KINDS = [
  'crash',
  'oom',
  'hang',
  'crash_loop',
  'silent',
  'error_spike',
  'resource_exhaustion',
  'dependency',
  'missed_run',
  'failed_run',
  'run_too_long',
] as const;
export const FaultKindSchema = z.enum(FAULT_KINDS);
export type FaultKind = z.infer<typeof FaultKindSchema>;

/**
 * What a rule is evaluated on:
 * - `exit`: a process.exit event of a target;
 * - `silence`: a target's heartbeats stopped (φ over its threshold) and no exit arrived;
 * - `host_silence`: every target of one host fell silent together;
 * - `check`: a cron/batch check's run was missed, failed or ran too long;
 * - `error_rate`: a service's error-span rate is well above its own baseline;
 * - `resource_trend`: a target's resource use is heading for its limit.
 */
export const TRIGGERS = ['exit', 'silence', 'host_silence', 'check', 'error_rate', 'resource_trend'] as const;
export const TriggerSchema = z.enum(TRIGGERS);
export type Trigger = z.infer<typeof TriggerSchema>;

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** A test on one fact: a plain value means "equals"; otherwise one operator. */
export const MatcherSchema = z.union([
  scalar,
  z
    .object({
      equals: scalar.optional(),
      not_equals: scalar.optional(),
      in: z.array(scalar).optional(),
      matches: z
        .string()
        .refine((s) => {
          try {
            new RegExp(s, 'i');
            return true;
          } catch {
            return false;
          }
        }, 'an invalid regular expression')
        .optional(),
      gt: z.number().optional(),
      gte: z.number().optional(),
      lt: z.number().optional(),
      lte: z.number().optional(),
      exists: z.boolean().optional(),
    })
    .strict()
    .refine((m) => Object.keys(m).length > 0, 'a matcher needs an operator: equals, not_equals, in, matches, gt, gte, lt, lte or exists'),
]);
export type Matcher = z.infer<typeof MatcherSchema>;

/**
 * A condition: `all: [...]`, `any: [...]`, `not: condition`, or a map of fact paths to matchers (all must
 * hold), e.g. `{ exit.signal: SIGKILL, memory.near_limit: true }`.
 */
export type Condition = { all: Condition[] } | { any: Condition[] } | { not: Condition } | Record<string, Matcher>;

const FACT_PATH = /^[a-z_]+(\.[a-z_0-9]+)*$/;

export const ConditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    z.object({ all: z.array(ConditionSchema).min(1) }).strict(),
    z.object({ any: z.array(ConditionSchema).min(1) }).strict(),
    z.object({ not: ConditionSchema }).strict(),
    z.record(z.string().regex(FACT_PATH, 'a fact path like exit.reason or memory.near_limit'), MatcherSchema),
  ]),
);

export const RuleSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'a rule id: lower-case letters, digits, "-", "_", "."'),
    description: z.string().optional(),
    on: TriggerSchema,
    /** The fault kind this rule produces; `none` marks the evidence as not a fault. */
    kind: z.enum([...FAULT_KINDS, 'none']),
    /** Higher runs first; the first rule whose condition holds decides. */
    priority: z.number().int().default(0),
    enabled: z.boolean().default(true),
    when: ConditionSchema.optional(),
    /** Handlebars template of the explanation shown to people; facts are its context. */
    explanation: z.string().default('{{target.instance}} failed ({{kind}})'),
    /** Handlebars template of the cause detail folded into the signature when there is no exception. */
    signature: z.string().optional(),
  })
  .strict();
export type Rule = z.infer<typeof RuleSchema>;

/** A rule in a user's file: the same fields, all optional except id, so a rule can be overridden in part. */
export const RuleOverrideSchema = RuleSchema.partial().extend({ id: RuleSchema.shape.id });

export const RulesFileSchema = z
  .object({
    rules: z.array(RuleOverrideSchema).default([]),
    /** Thresholds the built-in rules' facts are computed with. */
    settings: z
      .object({
        /** Correlation window: evidence of the target gathered before an exit or a silence. */
        window: DurationSchema.prefault('5m'),
        /** RSS at or above this share of the memory limit counts as "near the limit". */
        memory_near_limit_ratio: z.number().min(0).max(1).default(0.9),
        /** The window in which a service's abnormal exits are counted (fact service.abnormal_exits). */
        crash_loop_window: DurationSchema.prefault('10m'),
        /** A SIGTERM'd target replaced by a new version of its service within this time was a deploy. */
        deploy_grace: DurationSchema.prefault('60s'),
      })
      .strict()
      .prefault({}),
  })
  .strict();
export type RulesFile = z.infer<typeof RulesFileSchema>;
export type RuleSettings = RulesFile['settings'];
