/**
 * The demo's stand-in for the people on call: a webhook receiver (Standard Webhooks signatures checked,
 * as any receiver should) that prints each notification faultline routes to people — the faults no
 * supervisor handles, and those that escalated past the root supervisor.
 */
import { createServer, type Server } from 'node:http';
import { verify } from '../../src/deliver/signing.js';

export interface Notification {
  type: string;
  title: string;
  explanation: string;
}

export interface People {
  port: number;
  received: Notification[];
  close(): Promise<void>;
}

export async function listenForPeople(port: number, secret: string, tell: (n: Notification) => void): Promise<People> {
  const received: Notification[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const header = (name: string) => (typeof req.headers[name] === 'string' ? (req.headers[name] as string) : undefined);
      const check = verify([secret], { id: header('webhook-id'), timestamp: header('webhook-timestamp'), signature: header('webhook-signature') }, body);
      if (!check.ok) return void res.writeHead(401, { 'content-type': 'text/plain' }).end(check.reason);
      try {
        const event = JSON.parse(body) as { type?: string; title?: string; explanation?: string };
        const n = { type: String(event.type ?? ''), title: String(event.title ?? ''), explanation: String(event.explanation ?? '') };
        received.push(n);
        tell(n);
        res.writeHead(200).end();
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('not JSON');
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`port ${port} is ${err.code === 'EADDRINUSE' ? 'already in use' : `not usable (${err.code})`} (is another demo running?): choose another with --people-port`)),
    );
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
