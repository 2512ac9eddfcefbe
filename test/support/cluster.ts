/**
 * Several real faultline processes on one shared store: the embedded ClickHouse engine behind its HTTP
 * interface (clickhouse-http.ts) in a child process, each instance reaching it through a TCP relay of its
 * own that a test can cut (the instance is partitioned from the store) and heal. Reusable by the chaos suite.
 */
import { writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ownerOf } from '../../src/cluster/index.js';
import { startClickHouseHttp, type ClickHouseHttp } from './clickhouse-http.js';
import { eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from './faultline.js';

export interface ClusterOptions {
  instances: number;
  /** YAML lines added to every instance's config (webhooks, escalation, detection, …). */
  config?: string[];
  /** The cluster section's timing (defaults: heartbeat 500 ms, lease 3 s, tail 250 ms). */
  heartbeatMs?: number;
  leaseMs?: number;
  tailMs?: number;
  env?: Record<string, string>;
}

/** A target instance of `service` (`<service>-<k>`) whose rendezvous owner among `among` is `owner`. */
export function targetOwnedBy(owner: string, service: string, among: string[]): string {
  const found = Array.from({ length: 100 }, (_, k) => `${service}-${k}`).find((i) => ownerOf(`${service}\u0000${i}`, among) === owner);
  if (!found) throw new Error(`no instance of ${service} owned by ${owner} among ${among.join(', ')}`);
  return found;
}

/** A TCP relay to the store that can be cut (every connection dropped, new ones refused) and healed. */
export interface StoreLink {
  url: string;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export interface RunningCluster {
  dir: string;
  store: ClickHouseHttp;
  /** The instances by index (a restarted one replaces its entry); ids are `fl-<index>`. */
  instances: (RunningFaultline | undefined)[];
  links: StoreLink[];
  ids: string[];
  /** Starts (or restarts, same id and data dir) instance `i`; resolves once it listens. */
  start(i: number): Promise<RunningFaultline>;
  /** GET /api/v1/cluster of instance `i`. */
  view(i: number): Promise<ClusterView>;
  /** Waits until instance `i` sees exactly these instances live (ids). */
  waitLive(i: number, live: string[], timeoutMs?: number): Promise<ClusterView>;
  /** The last `chars` of each instance's log, headed by its id. */
  logs(chars?: number): string;
  /** Runs a step of a scenario; a failure carries the instances' logs. */
  withLogs(fn: () => Promise<void>, chars?: number): Promise<void>;
  /** Stops everything (SIGKILL: the tests' processes leave nothing behind) and removes the folder. */
  close(): Promise<void>;
}

export interface ClusterView {
  mode: string;
  instance: string;
  member: boolean;
  instances: { id: string; address: string; health: string; self: boolean; owned_targets: number; targets: { service: string; instance: string }[] }[];
}

const attr = (key: string, v: string | number) => ({ key, value: typeof v === 'number' ? { intValue: v } : { stringValue: v } });

/** One OTLP/JSON logs request with a heartbeat for each target (the Node collector's shape). */
export function heartbeats(targets: { service: string; instance: string; host: string }[]): string {
  const now = `${Date.now()}000000`;
  return JSON.stringify({
    resourceLogs: targets.map((t) => ({
      resource: { attributes: [attr('service.name', t.service), attr('service.instance.id', t.instance), attr('host.name', t.host)] },
      scopeLogs: [{ logRecords: [{ timeUnixNano: now, eventName: 'faultline.heartbeat', attributes: [attr('faultline.heartbeat.interval_ms', 300)] }] }],
    })),
  });
}

/** Joins two connections both ways, kept in `open` while they last; either one ending ends both. */
export function spliceSockets(client: Socket, upstream: Socket, open: Set<Socket>): void {
  open.add(client).add(upstream);
  const drop = () => {
    client.destroy();
    upstream.destroy();
    open.delete(client);
    open.delete(upstream);
  };
  client.on('error', drop).on('close', drop);
  upstream.on('error', drop).on('close', drop);
  client.pipe(upstream).pipe(client);
}

export async function startStoreLink(targetPort: number): Promise<StoreLink> {
  let cut = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (cut) return client.destroy();
    spliceSockets(client, connect(targetPort, '127.0.0.1'), sockets);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    cut: () => {
      cut = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    heal: () => {
      cut = false;
    },
    close: async () => {
      cut = true;
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

export async function startCluster(opts: ClusterOptions): Promise<RunningCluster> {
  const dir = tempDir('faultline-cluster-');
  const store = await startClickHouseHttp({ dataDir: join(dir, 'store') });
  const ids = Array.from({ length: opts.instances }, (_, i) => `fl-${i}`);
  const links = await Promise.all(ids.map(() => startStoreLink(store.port)));
  const instances: (RunningFaultline | undefined)[] = ids.map(() => undefined);
  const configFile = join(dir, 'faultline.yaml');
  writeFileSync(
    configFile,
    [
      'cluster:',
      `  heartbeat_ms: ${opts.heartbeatMs ?? 500}`,
      `  lease_ms: ${opts.leaseMs ?? 3000}`,
      `  tail_ms: ${opts.tailMs ?? 250}`,
      ...(opts.config ?? []),
      '',
    ].join('\n'),
  );
  const start = async (i: number) => {
    const fl = await startFaultline({
      dataDir: join(dir, ids[i]),
      args: ['--config', configFile],
      env: { FAULTLINE_CLICKHOUSE_URL: links[i].url, FAULTLINE_CLUSTER_INSTANCE_ID: ids[i], ...opts.env },
    });
    instances[i] = fl;
    return fl;
  };
  const view = async (i: number): Promise<ClusterView> => (await (await fetch(`${instances[i]!.http}/api/v1/cluster?targets=1000`)).json()) as ClusterView;
  const waitLive = (i: number, live: string[], timeoutMs = 20_000) =>
    eventually(
      async () => {
        const v = await view(i);
        const seen = v.instances.filter((x) => x.health !== 'dead').map((x) => x.id).sort();
        return v.member === live.includes(ids[i]) && seen.join() === [...live].sort().join() ? v : undefined;
      },
      timeoutMs,
      `${ids[i]} to see ${live.join(', ') || 'nobody'} live`,
    );
  const cluster: RunningCluster = {
    dir,
    store,
    instances,
    links,
    ids,
    start,
    view,
    waitLive,
    logs: (chars = 2500) => instances.map((fl, i) => `--- ${ids[i]}\n${fl?.logs().slice(-chars) ?? '(not started)'}`).join('\n'),
    withLogs: async (fn, chars) => {
      try {
        await fn();
      } catch (err) {
        (err as Error).message += `\n${cluster.logs(chars)}`;
        throw err;
      }
    },
    close: async () => {
      await Promise.all(instances.map((fl) => fl?.kill9()));
      await Promise.all(links.map((l) => l.close()));
      await store.kill();
      removeDir(dir);
    },
  };
  try {
    // The first migrates the store alone; the others join once it is live.
    await start(0);
    await waitLive(0, [ids[0]], 60_000);
    await Promise.all(ids.slice(1).map((_, k) => start(k + 1)));
    for (let i = 0; i < ids.length; i++) await waitLive(i, ids, 30_000);
  } catch (err) {
    const logs = cluster.logs(3000);
    await cluster.close();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
  return cluster;
}
