/**
 * The ceiling: a bare node:http server that only reads request bodies and answers 200 (empty for POST,
 * "OK" otherwise). Run pinned to the same core as faultline to show what the HTTP layer alone allows.
 * Prints {"port":N} on stdout once listening; exits on SIGTERM.
 */
import http from 'node:http';

let bodyBytes = 0;
const server = http.createServer((req, res) => {
  req.on('data', (c: Buffer) => (bodyBytes += c.length));
  req.on('end', () => {
    const body = req.method === 'POST' ? '' : 'OK';
    res.writeHead(200, { 'content-type': req.method === 'POST' ? String(req.headers['content-type'] ?? 'text/plain') : 'text/plain', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 75_000;
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});
process.on('SIGTERM', () => {
  process.stderr.write(`ceiling: read ${bodyBytes} body bytes\n`);
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
