import { createHash } from 'node:crypto';
import Handlebars from 'handlebars';
import type { z } from 'zod';
import { readYamlFile, YamlError } from '../config/index.js';
import { srcAsset } from '../paths.js';
import { holds, type Facts } from './conditions.js';
import { RuleSchema, RulesFileSchema, type Rule, type RuleSettings, type Trigger } from './schema.js';

/** Rules that cannot be used; the message names the file, the rule and the field. */
export class RulesError extends Error {
  override name = 'RulesError';
}

export const BUILTIN_RULES_FILE = srcAsset('rules', 'builtin.yaml');

interface CompiledRule extends Rule {
  render: (facts: Facts) => string;
  renderSignature?: (facts: Facts) => string;
}

export interface Decision {
  ruleId: string;
  kind: Rule['kind'];
  explanation: string;
  /** Cause detail for the signature (beside the exception), from the rule's `signature` template. */
  signatureDetail: string;
}

const hb = Handlebars.create();
hb.registerHelper('bytes', (v: unknown) => formatBytes(Number(v)));
hb.registerHelper('duration', (v: unknown) => formatDuration(Number(v)));
hb.registerHelper('time', (v: unknown) => formatTime(v));
hb.registerHelper('round', (v: unknown) => (Number.isFinite(Number(v)) ? String(Math.round(Number(v) * 10) / 10) : '∞'));

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${Math.round(n / 1024 ** 2)} MiB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
  return `${n} B`;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 6000) / 10} min`;
  return `${Math.round(ms / 360_000) / 10} h`;
}

/** A time as people read it in an explanation: HH:MM:SS UTC (the dashboard shows the viewer's zone). */
export function formatTime(v: unknown): string {
  const d = typeof v === 'number' || typeof v === 'string' ? new Date(v) : v instanceof Date ? v : undefined;
  return d && !Number.isNaN(d.getTime()) ? `${d.toISOString().slice(11, 19)} UTC` : '?';
}

/**
 * One loaded version of the rules: the built-in rules merged with the user's file (override by id, disable
 * with `enabled: false`, add new ones), validated and compiled. Immutable; a reload builds a new RuleSet.
 */
export class RuleSet {
  private readonly byTrigger = new Map<Trigger, CompiledRule[]>();

  private constructor(
    readonly rules: Rule[],
    readonly settings: RuleSettings,
    /** Content hash of the merged rules: the same rules give the same version across restarts. */
    readonly version: string,
    readonly sources: string[],
  ) {
    const ordered = rules.map((r, i) => ({ r, i })).sort((a, b) => b.r.priority - a.r.priority || a.i - b.i);
    for (const { r } of ordered) {
      if (!r.enabled) continue;
      const compiled: CompiledRule = {
        ...r,
        render: hb.compile(r.explanation, { noEscape: true, strict: false }),
        renderSignature: r.signature ? hb.compile(r.signature, { noEscape: true }) : undefined,
      };
      const list = this.byTrigger.get(r.on) ?? [];
      list.push(compiled);
      this.byTrigger.set(r.on, list);
    }
  }

  /** Loads the built-in rules and, if given, the user's rules file. Throws RulesError. */
  static load(userFile?: string): RuleSet {
    const builtin = parseFile(BUILTIN_RULES_FILE);
    const user = userFile ? parseFile(userFile) : undefined;
    const merged = new Map<string, Record<string, unknown>>();
    for (const r of builtin.file.rules) merged.set(r.id, { ...r });
    const origin = new Map<string, { file: string; index: number; locate: (p: PropertyKey[]) => number | undefined }>();
    builtin.file.rules.forEach((r, index) => origin.set(r.id, { file: BUILTIN_RULES_FILE, index, locate: builtin.locate }));
    user?.file.rules.forEach((r, index) => {
      const defined = Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined));
      merged.set(r.id, { ...(merged.get(r.id) ?? {}), ...defined });
      origin.set(r.id, { file: userFile!, index, locate: user.locate });
    });
    const rules: Rule[] = [];
    for (const [id, raw] of merged) {
      const parsed = RuleSchema.safeParse(raw);
      if (!parsed.success) {
        const o = origin.get(id)!;
        throw new RulesError(describe(parsed.error, o.file, (p) => o.locate(['rules', o.index, ...p]), id));
      }
      rules.push(parsed.data);
      compileCheck(parsed.data, origin.get(id)!.file);
    }
    const settings = { ...builtin.file.settings, ...(user?.rawSettings ? user.file.settings : {}) };
    const version = createHash('sha256').update(JSON.stringify({ rules, settings })).digest('hex').slice(0, 12);
    return new RuleSet(rules, settings, version, [BUILTIN_RULES_FILE, ...(userFile ? [userFile] : [])]);
  }

  /** The first enabled rule (highest priority first) for the trigger whose condition holds. */
  decide(trigger: Trigger, facts: Facts): Decision | undefined {
    for (const rule of this.byTrigger.get(trigger) ?? []) {
      if (!holds(rule.when, facts)) continue;
      const context = { ...facts, kind: rule.kind, settings: this.settings };
      return {
        ruleId: rule.id,
        kind: rule.kind,
        explanation: rule.render(context).replace(/\s+/g, ' ').trim(),
        signatureDetail: rule.renderSignature?.(context).trim() ?? '',
      };
    }
    return undefined;
  }
}

function parseFile(file: string) {
  let yaml;
  try {
    yaml = readYamlFile(file);
  } catch (err) {
    if (err instanceof YamlError) throw new RulesError(err.message);
    throw err;
  }
  const parsed = RulesFileSchema.safeParse(yaml.raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const index = issue.path[0] === 'rules' ? Number(issue.path[1]) : undefined;
    const id = index !== undefined ? ((yaml.raw as { rules?: { id?: string }[] }).rules?.[index]?.id ?? `rules[${index}]`) : undefined;
    throw new RulesError(describe(parsed.error, file, (p) => yaml.locate(p), id, index !== undefined ? 2 : 0));
  }
  const rawSettings = (yaml.raw as { settings?: unknown })?.settings !== undefined;
  return { file: parsed.data, locate: yaml.locate, rawSettings };
}

function describe(error: z.ZodError, file: string, locate: (p: PropertyKey[]) => number | undefined, ruleId?: string, skip = 0): string {
  return error.issues
    .map((issue) => {
      const line = locate(issue.path);
      const field = issue.path.slice(skip).map(String).join('.') || '(rule)';
      const what = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
      return `${file}${line ? `:${line}` : ''}: ${ruleId ? `rule "${ruleId}": ` : ''}${field}: ${what}`;
    })
    .join('\n');
}

function compileCheck(rule: Rule, file: string): void {
  for (const [field, template] of [['explanation', rule.explanation], ['signature', rule.signature]] as const) {
    if (template === undefined) continue;
    try {
      hb.precompile(template);
    } catch (err) {
      throw new RulesError(`${file}: rule "${rule.id}": ${field}: invalid template: ${(err as Error).message.split('\n')[0]}`);
    }
  }
}
