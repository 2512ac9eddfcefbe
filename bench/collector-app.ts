/**
 * The application of the collector benchmark: a small HTTP server that builds a JSON answer of a few dozen
 * objects per request (some CPU and allocation, like a typical API). It knows nothing of faultline; the
 * benchmark runs it twice, once plain and once under `node --import …/register`.
 */
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  const items = Array.from({ length: 40 }, (_, i) => ({ id: i, sku: `SKU-${i * 7919}`, price: (i * 37) % 100, tags: ['a', 'b', String(i)] }));
  const body = JSON.stringify({ path: req.url, total: items.reduce((s, x) => s + x.price, 0), items });
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`));
