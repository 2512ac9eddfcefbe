/**
 * The agent's configuration: `agent.yaml` (programs to run, systemd units to act on, secrets), overridden by
 * the environment, overridden by flags. One zod schema is validation, defaults and types; errors name the
 * file, the line and the field, as faultline's own configuration does.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { DurationSchema } from '../../src/config/duration.js';
import { readYamlFile, YamlError } from '../../src/config/yaml.js';
import { parseRunArgs, UsageError } from '../run/options.js';
import { RESTART_MODES, type RestartMode } from '../run/restart.js';
import { webhookKey } from './webhook.js';

export class AgentConfigError extends Error {
  override name = 'AgentConfigError';
}

const NAME = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]*$/, 'a name: letters, digits, "-", "_", ".", "@"');

const SecretSchema = z.string().refine((s) => webhookKey(s) !== undefined, 'a Standard Webhooks secret: "whsec_" + base64 of 24-64 bytes');

const HttpUrl = z
  .string()
  .url('an http(s) URL')
  .refine((u) => /^https?:\/\//.test(u), 'an http(s) URL')
  .transform((u) => u.replace(/\/+$/, ''));

/** A program the agent runs through `faultline run`, and restarts, stops and starts on actions. */
export const ProgramSchema = z
  .object({
    name: NAME,
    /** service.name it reports as: what supervision matchers (`match: { service: … }`) select. */
    service: z.string().min(1),
    /** service.instance.id; default `<host>/<name>`, the same across restarts. */
    instance: z.string().min(1).optional(),
    command: z.array(z.string()).min(1, 'the program and its arguments, e.g. [node, server.js]'),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).default({}),
    /** faultline run's own restart policy; `no` leaves restarts to faultline's supervision tree. */
    restart: z.enum(RESTART_MODES as unknown as [RestartMode, ...RestartMode[]]).default('no'),
    /** More flags for `faultline run` (e.g. ["--interval", "500ms"]). */
    run_args: z.array(z.string()).default([]),
  })
  .strict();

/** A systemd unit the agent acts on with `systemctl`; it runs under systemd, not under the agent. */
export const UnitSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9:_.@\\-]+\.(service|socket|target|timer|mount|path|scope|slice)$/, 'a unit name, e.g. nginx.service'),
    service: z.string().min(1),
    instance: z.string().min(1).optional(),
  })
  .strict();

export const AgentFileSchema = z
  .object({
    /** host:port the webhook endpoint listens on. */
    listen: z.string().default('127.0.0.1:9090'),
    /** faultline's HTTP address: where results are reported (and check pings go). */
    faultline: HttpUrl.default('http://127.0.0.1:8080'),
    /** Where the programs' telemetry goes (OTLP/HTTP). */
    otlp_endpoint: HttpUrl.default('http://127.0.0.1:4318'),
    /** Bearer token for faultline's API (results). */
    token: z.string().min(1).optional(),
    /** Secrets that verify the webhooks (several during a rotation). */
    secrets: z.array(SecretSchema).default([]),
    /** How far a webhook's timestamp may be from now. */
    tolerance: DurationSchema.prefault('5m'),
    /** A program still running this long after a (re)start counts as started. */
    settle: DurationSchema.prefault('1s'),
    /** How long a program may take to stop after SIGTERM before it is killed. */
    stop_timeout: DurationSchema.prefault('10s'),
    /** Keeps the ids of webhooks taken on across restarts (JSON lines); without it they live in memory. */
    state_file: z.string().min(1).optional(),
    /** The systemctl to run (a name looked up in PATH, or a path). */
    systemctl: z.string().min(1).default('systemctl'),
    programs: z.array(ProgramSchema).default([]),
    units: z.array(UnitSchema).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Map<string, string>();
    const targets = [...c.programs.map((p, i) => ({ at: ['programs', i], id: `${p.service}/${p.instance ?? p.name}`, name: p.name })), ...c.units.map((u, i) => ({ at: ['units', i], id: `${u.service}/${u.instance ?? u.name}`, name: u.name }))];
    for (const t of targets) {
      if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: [...t.at, 'name'], message: `"${t.name}" is used twice` });
      seen.set(t.name, t.id);
    }
    if (!/^[^:\s]*:\d+$/.test(c.listen) && !/^\[[0-9a-fA-F:]+\]:\d+$/.test(c.listen)) ctx.addIssue({ code: 'custom', path: ['listen'], message: 'host:port, e.g. 127.0.0.1:9090' });
  });

export type AgentFile = z.infer<typeof AgentFileSchema>;
export type ProgramConfig = z.infer<typeof ProgramSchema>;
export type UnitConfig = z.infer<typeof UnitSchema>;

export interface AgentConfig extends Omit<AgentFile, 'listen'> {
  listen: { host: string; port: number };
  host: string;
  source?: string;
}

/** What the command line and the environment say; each overrides the file's field of the same name. */
export interface Overrides {
  config?: string;
  listen?: string;
  faultline?: string;
  otlp_endpoint?: string;
  token?: string;
  secrets?: string[];
  tolerance?: string;
}

/** Reads the file (if any), applies the environment then the flags, validates. Throws AgentConfigError. */
export function loadAgentConfig(flags: Overrides, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const file = flags.config ?? env.FAULTLINE_AGENT_CONFIG;
  let raw: unknown = {};
  let locate: (path: PropertyKey[]) => number | undefined = () => undefined;
  if (file) {
    try {
      ({ raw, locate } = readYamlFile(file));
    } catch (err) {
      if (err instanceof YamlError) throw new AgentConfigError(err.message);
      throw err;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AgentConfigError(`${file}: expected a mapping (listen, faultline, secrets, programs, units)`);
  }
  const merged: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  const origin = new Map<string, string>();
  const set = (key: string, value: unknown, from: string) => {
    if (value === undefined || value === '') return;
    merged[key] = value;
    origin.set(key, from);
  };
  const envSecrets = env.FAULTLINE_AGENT_SECRET?.split(',').map((s) => s.trim()).filter(Boolean);
  set('token', env.FAULTLINE_TOKEN, 'environment FAULTLINE_TOKEN');
  set('secrets', envSecrets?.length ? envSecrets : undefined, 'environment FAULTLINE_AGENT_SECRET');
  set('otlp_endpoint', env.OTEL_EXPORTER_OTLP_ENDPOINT, 'environment OTEL_EXPORTER_OTLP_ENDPOINT');
  for (const [key, flag] of [['listen', '--listen'], ['faultline', '--faultline'], ['otlp_endpoint', '--otlp-endpoint'], ['token', '--token'], ['secrets', '--secret'], ['tolerance', '--tolerance']] as const)
    set(key, flags[key], flag);

  const result = AgentFileSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.map(String).join('.') || '(top level)';
      const from = origin.get(String(issue.path[0]));
      const where = from ?? (file ? `${file}${locate(issue.path) ? `:${locate(issue.path)}` : ''}` : 'defaults');
      const what = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
      return `  ${where}: ${key}: ${what}`;
    });
    throw new AgentConfigError(`invalid agent configuration:\n${lines.join('\n')}`);
  }
  const c = result.data;
  // Each program's `faultline run` line is checked now, so a bad run_args fails at start, not at the first restart.
  c.programs.forEach((p, i) => {
    try {
      parseRunArgs([...p.run_args, '--', ...p.command], {});
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      throw new AgentConfigError(`invalid agent configuration:\n  ${file ?? 'defaults'}${locate(['programs', i, 'run_args']) ? `:${locate(['programs', i, 'run_args'])}` : ''}: programs.${i}.run_args: ${err.message}`);
    }
  });
  if (c.secrets.length === 0)
    throw new AgentConfigError('no webhook secret: give --secret whsec_…, FAULTLINE_AGENT_SECRET or `secrets:` in the config (an agent that acted on unsigned requests would let anyone restart your programs)');
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(c.listen)!;
  const port = Number(m[2]);
  if (port > 65535) throw new AgentConfigError(`invalid agent configuration:\n  ${origin.get('listen') ?? file ?? 'defaults'}: listen: port ${port} is out of range`);
  return { ...c, listen: { host: m[1] || '127.0.0.1', port }, host: hostname(), source: file };
}

/** A program's or unit's service.instance.id when the config gives none: stable across restarts. */
export const defaultInstance = (host: string, name: string) => `${host}/${name}`;
