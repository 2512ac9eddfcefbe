/**
 * TEST-ONLY child process entry for the HTTP front of clickhouse-http.ts:
 * `node clickhouse-http-main.js <data dir> <port>` (credentials in CLICKHOUSE_HTTP_USER/PASSWORD).
 * Prints `clickhouse-http listening port=<n>`; SIGTERM (or the parent closing stdin) stops it cleanly.
 */
import { serveClickHouseHttp } from './clickhouse-http.js';

const [dataDir, port = '0'] = process.argv.slice(2);
if (!dataDir) {
  process.stderr.write('usage: clickhouse-http-main.js <data dir> [port]\n');
  process.exit(2);
}
const front = await serveClickHouseHttp({
  dataDir,
  port: Number(port),
  user: process.env.CLICKHOUSE_HTTP_USER || 'default',
  password: process.env.CLICKHOUSE_HTTP_PASSWORD ?? '',
});
process.stdout.write(`clickhouse-http listening port=${front.port}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  front.close().then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`clickhouse-http: ${err.message}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('close', stop);
process.stdin.resume();
