/**
 * Several faultline instances on one store for the multi-instance scenarios: the ClickHouse HTTP front over
 * the real engine, each instance reaching it through a link that can be cut (test/support/cluster.ts), each
 * on fixed ports with its own data dir (a restarted instance is found where it was), and a TCP balancer in
 * front of them for the watched targets, as a Kubernetes Service would be: each new connection goes to the
 * next instance that accepts it.
 */
import { join } from 'node:path';
import { connect, createServer, type Socket } from 'node:net';
import { startClickHouseHttp, type ClickHouseHttp } from '../../test/support/clickhouse-http.js';
import { spliceSockets, startStoreLink, type StoreLink } from '../../test/support/cluster.js';
import { removeDir, tempDir } from '../../test/support/faultline.js';
import { chaosFaultline, type ChaosFaultline } from './faultline.js';
import { waitFor, type Findings } from './harness.js';

export interface ChaosCluster {
  store: ClickHouseHttp;
  links: StoreLink[];
  nodes: ChaosFaultline[];
  ids: string[];
  /** OTLP/HTTP through the balancer. */
  otlp: string;
  /** Waits until instance `i` sees exactly `live` as live; false when it did not within the time. */
  waitLive(i: number, live: string[], timeoutMs?: number): Promise<boolean>;
}

interface ClusterView {
  member: boolean;
  instances: { id: string; health: string; owned_targets: number }[];
}

export async function chaosCluster(f: Findings, n: number, config: (id: string) => string[] = () => []): Promise<ChaosCluster> {
  const dir = tempDir('faultline-chaos-cluster-');
  f.onCleanup(() => removeDir(dir));
  const store = await startClickHouseHttp({ dataDir: join(dir, 'store') });
  f.onCleanup(() => store.kill());
  const ids = Array.from({ length: n }, (_, i) => `fl-${i}`);
  const links = await Promise.all(ids.map(() => startStoreLink(store.port)));
  f.onCleanup(() => Promise.all(links.map((l) => l.close())).then(() => undefined));
  const nodes: ChaosFaultline[] = [];
  for (const [i, id] of ids.entries()) {
    const nodeDir = join(dir, id);
    await import('node:fs').then((fs) => fs.mkdirSync(nodeDir, { recursive: true }));
    nodes.push(
      await chaosFaultline(f, nodeDir, {
        config: ['cluster:', '  heartbeat_ms: 500', '  lease_ms: 2000', '  tail_ms: 250', ...config(id)],
        env: { FAULTLINE_CLICKHOUSE_URL: links[i].url, FAULTLINE_CLICKHOUSE_DATABASE: 'faultline', FAULTLINE_CLUSTER_INSTANCE_ID: id },
      }),
    );
  }
  const waitLive = async (i: number, live: string[], timeoutMs = 30_000) =>
    !!(await waitFor(async () => {
      const v = await nodes[i].get<ClusterView>('/api/v1/cluster');
      const seen = v.instances.filter((x) => x.health !== 'dead').map((x) => x.id).sort();
      return v.member && seen.join() === [...live].sort().join();
    }, timeoutMs, 250));
  // The first migrates the store alone; the others join once it is live.
  await nodes[0].start();
  if (!(await waitLive(0, [ids[0]], 60_000))) throw new Error(`${ids[0]} did not become live:\n${nodes[0].current.logs().slice(-3000)}`);
  await Promise.all(nodes.slice(1).map((x) => x.start()));
  for (let i = 0; i < n; i++) if (!(await waitLive(i, ids))) throw new Error(`${ids[i]} does not see all ${n} instances live`);
  const balancer = await startBalancer(f, nodes.map((x) => x.ports.otlpHttp));
  return { store, links, nodes, ids, otlp: `http://127.0.0.1:${balancer}`, waitLive };
}

/** A TCP balancer: each connection to the next backend that accepts it (round robin). Returns its port. */
async function startBalancer(f: Findings, ports: number[]): Promise<number> {
  let next = 0;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    open.add(client);
    client.pause();
    const tryFrom = (tries: number) => {
      if (tries >= ports.length) return client.destroy();
      const port = ports[next++ % ports.length];
      const upstream = connect(port, '127.0.0.1');
      upstream.once('error', () => tryFrom(tries + 1));
      upstream.once('connect', () => {
        upstream.removeAllListeners('error');
        spliceSockets(client, upstream, open);
        client.resume();
      });
    };
    tryFrom(0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  f.onCleanup(async () => {
    for (const s of open) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return (server.address() as { port: number }).port;
}
