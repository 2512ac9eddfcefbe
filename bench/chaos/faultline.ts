/**
 * faultline as the chaos scenarios run it: the real `faultline serve` process on fixed ports (so a restarted
 * instance is found where its clients left it), with a config file, ready once /readyz says so.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createServer } from 'node:net';
import { startFaultline, type RunningFaultline } from '../../test/support/faultline.js';
import { sleep, type Findings } from './harness.js';

export type { RunningFaultline };

export interface ChaosFaultline {
  dir: string;
  dataDir: string;
  ports: { http: number; otlpHttp: number; otlpGrpc: number };
  /** Headers for its API (a bearer token when it listens beyond loopback). */
  headers: Record<string, string>;
  current: RunningFaultline;
  /** Starts (again) on the same ports and data dir. */
  start(): Promise<RunningFaultline>;
  /** GET on the HTTP port, as JSON. */
  get<T>(path: string): Promise<T>;
  /** The value of an unlabelled metric from /metrics. */
  metric(name: string): Promise<number | undefined>;
  /** Waits until the write-ahead log is empty (everything acknowledged is in the store). */
  drained(timeoutMs: number): Promise<boolean>;
}

export async function chaosFaultline(
  f: Findings,
  dir: string,
  opts: { config?: string[]; env?: Record<string, string>; host?: string; token?: string } = {},
): Promise<ChaosFaultline> {
  const host = opts.host ?? '127.0.0.1';
  const ports = { http: await fixedPort(), otlpHttp: await fixedPort(), otlpGrpc: await fixedPort() };
  const config = join(dir, 'faultline.yaml');
  // Beyond loopback faultline requires tokens: one that may ingest and read.
  const auth = opts.token ? ['auth:', '  tokens:', `    - { name: chaos, token: "${opts.token}", scopes: [ingest, admin] }`] : [];
  const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  writeFileSync(config, `${[...auth, ...(opts.config ?? [])].join('\n')}\n`);
  const dataDir = join(dir, 'data');
  const env = {
    FAULTLINE_HOST: host,
    FAULTLINE_HTTP_PORT: String(ports.http),
    FAULTLINE_OTLP_HTTP_PORT: String(ports.otlpHttp),
    FAULTLINE_OTLP_GRPC_PORT: String(ports.otlpGrpc),
    FAULTLINE_LOG_LEVEL: 'info',
    ...opts.env,
  };
  const base = `http://${host}:${ports.http}`;
  const runs: RunningFaultline[] = [];
  const madeAt = new Date().toISOString().replace(/[:.]/g, '-');
  const fl: ChaosFaultline = {
    dir,
    dataDir,
    ports,
    headers,
    current: undefined as unknown as RunningFaultline,
    start: async () => {
      fl.current = await startFaultline({ dataDir, env, args: ['--config', config] });
      runs.push(fl.current);
      for (const until = Date.now() + 60_000; ; await sleep(100)) {
        const ready = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
        if (ready) break;
        if (Date.now() > until) throw new Error(`faultline not ready in 60 s:\n${fl.current.logs().slice(-3000)}`);
      }
      return fl.current;
    },
    get: async <T>(path: string) => {
      const res = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(30_000) });
      if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${(await res.text()).slice(0, 300)}`);
      return (await res.json()) as T;
    },
    metric: async (name) => {
      const text = await (await fetch(`${base}/metrics`, { headers, signal: AbortSignal.timeout(30_000) })).text();
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    },
    drained: async (timeoutMs) => {
      for (const until = Date.now() + timeoutMs; Date.now() < until; await sleep(250)) {
        if ((await fl.metric('faultline_wal_bytes').catch(() => undefined)) === 0) return true;
      }
      return false;
    },
  };
  f.onCleanup(async () => {
    await fl.current?.kill9();
    keepLogs(`${madeAt}-${basename(dir)}`, runs);
  });
  return fl;
}

/** With CHAOS_LOGS_DIR set, each run's log is kept there (the scenario's folders are removed). */
function keepLogs(name: string, runs: RunningFaultline[]): void {
  const to = process.env.CHAOS_LOGS_DIR;
  if (!to) return;
  mkdirSync(to, { recursive: true });
  for (const [i, run] of runs.entries()) writeFileSync(join(to, `${name}-run${i + 1}.log`), run.logs());
}

/** The fault list as the API gives it (up to 500, newest first). */
export interface FaultView {
  id: string;
  kind: string;
  state: string;
  detected_at: string;
  target: { service: string; instance: string; host: string } | null;
  host?: string;
}

export async function faultsOf(fl: ChaosFaultline, query = ''): Promise<FaultView[]> {
  return (await fl.get<{ faults: FaultView[] }>(`/api/v1/faults?limit=500${query ? `&${query}` : ''}`)).faults;
}

/**
 * A free port below the ephemeral range (32768 and up on Linux), so that no outgoing connection takes it
 * between now and a restart of the instance that listens on it.
 */
async function fixedPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}
