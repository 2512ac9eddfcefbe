/**
 * `npm run fuzz`: the long fuzz run. Millions of generated inputs through the decoders in process, then
 * a stretch against a real faultline process over HTTP (OTLP/HTTP and the ping API), with a progress line
 * and a summary; exit code 1 when anything failed.
 *
 *   npm run fuzz                                   # 2,000,000 inputs in process, 60 s over HTTP
 *   FUZZ_INPUTS=10000000 FUZZ_HTTP_SECONDS=300 FUZZ_SEED=7 npm run fuzz
 */
import { removeDir, startFaultline, tempDir } from '../support/faultline.js';
import { formatSummary, fuzzDecoders, fuzzHttp, type Summary } from './harness.js';

const inputs = Number(process.env.FUZZ_INPUTS ?? 2_000_000);
const httpSeconds = Number(process.env.FUZZ_HTTP_SECONDS ?? 60);
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

function progress(s: Summary, started: number): void {
  const secs = (performance.now() - started) / 1000;
  const rss = process.memoryUsage().rss / 1048576;
  process.stderr.write(
    `\r  ${s.inputs.toLocaleString('en')} / ${inputs.toLocaleString('en')} inputs, ${Math.round(s.inputs / secs).toLocaleString('en')}/s, ` +
      `${s.failures.length} failures, slowest ${s.slowestMs.toFixed(0)} ms, rss ${rss.toFixed(0)} MiB   `,
  );
}

async function main(): Promise<number> {
  console.log(`fuzz seed ${seed} (FUZZ_SEED=${seed} reproduces this run)`);
  let started = performance.now();
  const decoders = fuzzDecoders({ seed, until: (n) => n >= inputs, progress: (s) => progress(s, started) });
  process.stderr.write('\n');
  console.log(formatSummary('decoders (in process)', decoders, (performance.now() - started) / 1000));

  let http: Summary | undefined;
  if (httpSeconds > 0) {
    const dir = tempDir('faultline-fuzz-');
    const fl = await startFaultline({ dataDir: dir, env: { FAULTLINE_PING_AUTO_CREATE: '1' } });
    try {
      started = performance.now();
      const until = Date.now() + httpSeconds * 1000;
      const ticker = setInterval(() => process.stderr.write(`\r  over HTTP: ${Math.round((until - Date.now()) / 1000)} s left   `), 1000);
      http = await fuzzHttp(fl, { seed, concurrency: 8, until: () => Date.now() >= until });
      clearInterval(ticker);
      process.stderr.write('\n');
      const alive = fl.proc.exitCode === null && (await fetch(`${fl.http}/healthz`).then((r) => r.ok, () => false));
      if (!alive) http.failures.push({ n: -1, mutation: '-', problem: 'faultline is not alive after the run', sample: '' });
      console.log(formatSummary('OTLP/HTTP and ping API (a real faultline)', http, (performance.now() - started) / 1000));
    } finally {
      await fl.stop();
      removeDir(dir);
    }
  }
  const failed = decoders.failures.length + (http?.failures.length ?? 0);
  console.log(failed ? `FAILED: ${failed} failing inputs (seed ${seed})` : 'no failures');
  return failed ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  console.error(err);
  process.exit(1);
});
