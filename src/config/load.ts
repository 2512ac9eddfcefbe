import { existsSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigSchema, type Config } from './schema.js';
import { readYamlFile, YamlError } from './yaml.js';

/** A configuration that cannot be used; `message` names the file, the field and what was expected. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Environment variables that override one config field each; parsed here and nowhere else. */
const ENV_OVERRIDES: ReadonlyArray<[string, string[], 'string' | 'int' | 'bool']> = [
  ['FAULTLINE_HOST', ['server', 'host'], 'string'],
  ['FAULTLINE_HTTP_PORT', ['server', 'http_port'], 'int'],
  ['FAULTLINE_OTLP_HTTP_PORT', ['server', 'otlp_http_port'], 'int'],
  ['FAULTLINE_OTLP_GRPC_PORT', ['server', 'otlp_grpc_port'], 'int'],
  ['FAULTLINE_DATA_DIR', ['data_dir'], 'string'],
  ['FAULTLINE_LOG_LEVEL', ['log_level'], 'string'],
  ['FAULTLINE_CLICKHOUSE_URL', ['store', 'clickhouse_url'], 'string'],
  ['FAULTLINE_CLICKHOUSE_USER', ['store', 'user'], 'string'],
  ['FAULTLINE_CLICKHOUSE_PASSWORD', ['store', 'password'], 'string'],
  ['FAULTLINE_CLICKHOUSE_DATABASE', ['store', 'database'], 'string'],
  ['FAULTLINE_MAX_WAL_BYTES', ['writer', 'max_wal_bytes'], 'int'],
  ['FAULTLINE_PING_AUTO_CREATE', ['ping', 'auto_create'], 'bool'],
  ['FAULTLINE_CLUSTER_INSTANCE_ID', ['cluster', 'instance_id'], 'string'],
];

export const ENV_NAMES = ENV_OVERRIDES.map(([name]) => name);

export interface LoadOptions {
  /** Explicit config file; when absent `FAULTLINE_CONFIG`, then `./faultline.yaml` if it exists. */
  file?: string;
  env?: NodeJS.ProcessEnv;
}

export interface LoadedConfig {
  config: Config;
  /** The file the config came from, if any. */
  source?: string;
}

/** Reads, merges (file < environment) and validates the configuration. Throws ConfigError. */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.FAULTLINE_CONFIG ?? (existsSync('faultline.yaml') ? 'faultline.yaml' : undefined);
  const { raw, locate } = file ? readYaml(file) : { raw: {}, locate: () => undefined };
  const envApplied = applyEnv(raw, env);
  const result = ConfigSchema.safeParse(envApplied.value);
  if (!result.success) throw new ConfigError(describeIssues(result.error, file, locate, envApplied.fromEnv));
  resolveTokens(result.data, env, file, locate);
  return { config: result.data, source: file };
}

/** Reads each `token_env` secret from the environment into `token`, so the rest of faultline sees one field. */
function resolveTokens(config: Config, env: NodeJS.ProcessEnv, file: string | undefined, locate: (path: PropertyKey[]) => number | undefined): void {
  const problems: string[] = [];
  config.auth.tokens.forEach((t, i) => {
    if (t.token_env === undefined) return;
    const value = env[t.token_env] ?? '';
    const path = ['auth', 'tokens', i, 'token_env'];
    const where = file ? `${file}${locate(path) ? `:${locate(path)}` : ''}` : 'defaults';
    if (value.length < 16) problems.push(`  ${where}: ${path.join('.')}: environment variable ${t.token_env} ${value ? 'holds fewer than 16 characters' : 'is not set'} (token "${t.name}")`);
    else t.token = value;
  });
  if (problems.length) throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
}

function readYaml(file: string) {
  try {
    return readYamlFile(file);
  } catch (err) {
    if (err instanceof YamlError) throw new ConfigError(err.message);
    throw err;
  }
}

function applyEnv(raw: unknown, env: NodeJS.ProcessEnv): { value: unknown; fromEnv: Map<string, string> } {
  const value = (typeof raw === 'object' && raw !== null ? structuredClone(raw) : raw) as Record<string, unknown>;
  const fromEnv = new Map<string, string>();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { value, fromEnv };
  for (const [name, path, kind] of ENV_OVERRIDES) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    let target: Record<string, unknown> = value;
    for (const key of path.slice(0, -1)) {
      if (typeof target[key] !== 'object' || target[key] === null) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[path[path.length - 1]] = convertEnv(text, kind);
    fromEnv.set(path.join('.'), name);
  }
  return { value, fromEnv };
}

function convertEnv(text: string, kind: 'string' | 'int' | 'bool'): unknown {
  if (kind === 'int') return /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text;
  if (kind === 'bool') return ['1', 'true', 'yes', 'on'].includes(text.toLowerCase()) ? true : ['0', 'false', 'no', 'off'].includes(text.toLowerCase()) ? false : text;
  return text;
}

function describeIssues(
  error: z.ZodError,
  file: string | undefined,
  locate: (path: PropertyKey[]) => number | undefined,
  fromEnv: Map<string, string>,
): string {
  const lines = error.issues.map((issue) => {
    const key = issue.path.map(String).join('.') || '(top level)';
    const envName = fromEnv.get(key);
    const where = envName
      ? `environment ${envName}`
      : file
        ? `${file}${locate(issue.path) ? `:${locate(issue.path)}` : ''}`
        : 'defaults';
    return `  ${where}: ${key}: ${explain(issue)}`;
  });
  return `invalid configuration:\n${lines.join('\n')}`;
}

function explain(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return issue.message;
}
