#!/usr/bin/env node
import { parseArgs } from 'node:util';
import type { Config } from './config/index.js';
import type { createLogger } from './log/index.js';
import { VERSION } from './version.js';

// The configuration (zod schemas, YAML) is loaded only for the service's own commands: `faultline run`
// stays a small process beside the command it watches (the schemas alone weigh ~28 MiB of RSS).
const help = (envNames: readonly string[]) => `faultline ${VERSION} — identifies faults in running systems and drives their supervisors

Usage:
  faultline [serve] [--config FILE]     run the service (the default command)
  faultline migrate [--config FILE]     create or upgrade the store's tables, then exit
  faultline migrate --cluster NAME      the same on a ClickHouse cluster: replicated tables ON CLUSTER NAME
                                        with Distributed tables over them (see deploy/clickhouse/)
  faultline run [options] -- CMD ARGS…  run a command and report it (any language); see faultline run --help
  faultline agent [--config agent.yaml] carry out supervisor actions on this host; see faultline agent --help
  faultline --help | --version

Options:
  -c, --config FILE   YAML configuration (default: $FAULTLINE_CONFIG, else ./faultline.yaml if present;
                      faultline.example.yaml documents every field)
  -h, --help          show this help
  -v, --version       print the version

Listeners (defaults): HTTP API, ping and dashboard :8080, OTLP/HTTP :4318, OTLP/gRPC :4317.
Storage: embedded ClickHouse (chDB) under ./data unless FAULTLINE_CLICKHOUSE_URL names a server.

Environment overrides:
  ${envNames.join('\n  ')}
`;

/**
 * Exits once stdout and stderr have handed everything to their readers: process.exit() drops what a pipe
 * has not taken yet (through `faultline run`, the last megabytes a command wrote to stderr).
 */
async function exitWritten(code: number): Promise<never> {
  const pending = () => [process.stdout, process.stderr].some((s) => s.writableLength > 0 && !s.destroyed);
  while (pending()) await new Promise((r) => setTimeout(r, 10));
  process.exit(code);
}

function fail(message: string, code = 2): never {
  process.stderr.write(`faultline: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'run') {
    // The native wrapper takes this process over when it can (no Node process stays beside the command).
    (await import('../collectors/run/native.js')).execNative(argv.slice(1));
    const run = await import('../collectors/run/index.js');
    return exitWritten(await run.main(argv.slice(1)));
  }
  if (argv[0] === 'agent') {
    const agent = await import('../collectors/agent/index.js');
    return exitWritten(await agent.main(argv.slice(1)));
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        cluster: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    fail(`${(err as Error).message}\nRun "faultline --help" for usage.`);
  }
  const { values, positionals } = parsed;
  const { ConfigError, ENV_NAMES, loadConfig } = await import('./config/index.js');
  const { createLogger } = await import('./log/index.js');
  if (values.help) return void process.stdout.write(help(ENV_NAMES));
  if (values.version) return void process.stdout.write(`${VERSION}\n`);
  const command = positionals[0] ?? 'serve';
  if (positionals.length > 1 || !['serve', 'migrate'].includes(command))
    fail(`unknown command "${positionals.join(' ')}"\nRun "faultline --help" for usage.`);
  if (values.cluster !== undefined && command !== 'migrate') fail('--cluster applies to "faultline migrate" only');

  let config: Config;
  try {
    config = loadConfig({ file: values.config }).config;
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const log = createLogger(config.log_level);
  if (command === 'migrate') return runMigrate(config, log, values.cluster);
  return runServe(config, log);
}

async function runMigrate(config: Config, log: ReturnType<typeof createLogger>, cluster?: string): Promise<void> {
  // Loaded only for the commands that need them: `faultline run` starts its child without the server's weight.
  const { migrate, openStore, clusterNameProblem } = await import('./store/index.js');
  const problem = cluster === undefined ? undefined : clusterNameProblem(cluster);
  if (problem) fail(`--cluster: ${problem}`);
  if (cluster !== undefined && !config.store.clickhouse_url)
    fail('--cluster needs a ClickHouse server: set FAULTLINE_CLICKHOUSE_URL (or store.clickhouse_url) to a node of the cluster');
  const store = await openStore(config);
  try {
    const report = await migrate(store, config.store.retention_days, { cluster });
    log.info('store is up to date', {
      kind: store.kind,
      location: store.location,
      ...(cluster ? { cluster } : {}),
      applied: report.applied.join(',') || 'none',
      already_applied: report.alreadyApplied,
      retention_changed: report.retentionChanged.join(',') || 'none',
    });
  } finally {
    await store.close();
  }
}

async function runServe(config: Config, log: ReturnType<typeof createLogger>): Promise<void> {
  const { FaultlineServer } = await import('./server.js');
  const { SystemdNotifier } = await import('./systemd/index.js');
  const server = new FaultlineServer(config, log);
  const systemd = new SystemdNotifier(log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn('second signal: exiting without flushing; unwritten rows stay in the write-ahead log', { signal });
      process.exit(130);
    }
    stopping = true;
    systemd.stopping();
    log.info('shutting down: flushing the write-ahead log to the store', { signal });
    server.shutdown().then(
      () => process.exit(0),
      (err) => {
        log.error('shutdown failed', { error: err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    const ports = await server.start();
    systemd.ready(`listening: http ${ports.http}, otlp/http ${ports.otlpHttp}, otlp/grpc ${ports.otlpGrpc}`);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = e.code === 'EADDRINUSE' ? `a port is already in use (${e.message}); set another with FAULTLINE_*_PORT` : e.message;
    log.error('cannot start', { reason });
    await server.shutdown().catch(() => undefined);
    process.exit(1);
  }
}

main(process.argv.slice(2)).catch((err: Error) => fail(`unexpected error: ${err.message}`, 1));
