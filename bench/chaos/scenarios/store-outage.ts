/**
 * The store unreachable under load (server mode, through the ClickHouse HTTP front over the real engine):
 * faultline acknowledges only what its write-ahead log holds, sheds with 429/503 and Retry-After once the
 * log is full, says not ready, and writes the whole backlog once the store is back. The load retries shed
 * requests after their Retry-After, as OTLP exporters do.
 */
import { startClickHouseHttp, type ClickHouseHttp } from '../../../test/support/clickhouse-http.js';
import { removeDir, tempDir } from '../../../test/support/faultline.js';
import { chaosFaultline } from '../faultline.js';
import { sleep, type Scenario } from '../harness.js';
import { checkLedger } from '../ledger.js';
import { startLoad } from '../load.js';
import { withClickHouse } from '../store.js';

export const storeOutage: Scenario = {
  name: 'store-outage',
  title: 'the store unreachable under load, then back',
  budgetS: (o) => Math.round(o.outageS + (o.quick ? 80 : 150)),
  async run(f, opts) {
    const dir = tempDir('faultline-chaos-outage-');
    f.onCleanup(() => removeDir(dir));
    const storeDir = tempDir('faultline-chaos-store-');
    f.onCleanup(() => removeDir(storeDir));
    let front: ClickHouseHttp = await startClickHouseHttp({ dataDir: storeDir });
    f.onCleanup(() => front.stop());
    const port = front.port;
    // A small log, so that a run of a few minutes fills it: shedding is part of what is checked.
    const walBytes = opts.quick ? 1 << 20 : 8 << 20;
    const fl = await chaosFaultline(f, dir, {
      env: { FAULTLINE_CLICKHOUSE_URL: front.url, FAULTLINE_CLICKHOUSE_DATABASE: 'faultline', FAULTLINE_MAX_WAL_BYTES: String(walBytes) },
    });
    await fl.start();
    const warmS = opts.quick ? 4 : 10;
    const afterS = opts.quick ? 8 : 20;
    const load = startLoad({ port: fl.ports.otlpHttp, seconds: warmS + opts.outageS + afterS, rate: 40, connections: 8, drainS: 40 });
    await sleep(warmS * 1000);

    await front.kill();
    const atCut = load.progress();
    f.inject(`the store (ClickHouse HTTP front) SIGKILLed ${warmS} s into a load of 40 requests/s (50 spans each) + heartbeats, for ${opts.outageS} s`);
    f.inject(`write-ahead log capped at ${walBytes / (1 << 20)} MiB (writer.max_wal_bytes)`);
    let notReady = 0, readySamples = 0, maxWal = 0;
    for (const until = Date.now() + opts.outageS * 1000; Date.now() < until; await sleep(1000)) {
      const ready = await fetch(`http://127.0.0.1:${fl.ports.http}/readyz`).then((r) => r.status, () => 0);
      readySamples++;
      if (ready === 503) notReady++;
      maxWal = Math.max(maxWal, (await fl.metric('faultline_wal_bytes').catch(() => 0)) ?? 0);
    }
    const atBack = load.progress();
    front = await startClickHouseHttp({ dataDir: storeDir, port });
    const backAt = performance.now();
    f.inject('the store started again on the same port and data');

    const drained = await fl.drained(90_000);
    const caughtUpS = (performance.now() - backAt) / 1000;
    const readyAgain = await fetch(`http://127.0.0.1:${fl.ports.http}/readyz`).then((r) => r.status === 200, () => false);
    const result = await load.done;
    // The last retries were acknowledged after the backlog was written: wait for them too.
    f.check('everything acknowledged after the outage written too', await fl.drained(60_000));

    f.check('ingest acknowledged into the write-ahead log while the store was gone', atBack.ackedSpans > atCut.ackedSpans, `${atBack.ackedSpans - atCut.ackedSpans} spans acknowledged during the outage`);
    f.check('ingest shed with 429/503 once the log was full', result.shed > 0, `${result.shed} answers shed (${JSON.stringify(result.statuses)}), the log held up to ${(maxWal / (1 << 20)).toFixed(1)} MiB`);
    f.check('every shed answer carried a Retry-After', result.shedWithoutRetryAfter === 0, `Retry-After values ${result.retryAfterS.join(', ') || 'none'} s; ${result.shedWithoutRetryAfter} without`);
    f.check('/readyz said not ready during the outage', notReady >= readySamples - 5 && notReady > 0, `503 in ${notReady} of ${readySamples} samples (1/s)`);
    f.check('the backlog was written once the store was back', drained, `write-ahead log empty ${caughtUpS.toFixed(1)} s after the store came back`);
    f.check('/readyz ready again', readyAgain);
    f.check('the same faultline process throughout', fl.current.proc.exitCode === null);
    f.figure('spans acknowledged during the outage', atBack.ackedSpans - atCut.ackedSpans);
    f.figure('answers shed', result.shed);
    f.figure('catch-up after the store came back (s)', caughtUpS);
    f.figure('write-ahead log peak (MiB)', maxWal / (1 << 20));
    await withClickHouse(front.url, (q) => checkLedger(f, result, q));
  },
};
