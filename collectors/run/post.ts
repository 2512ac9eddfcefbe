/**
 * One HTTP POST with a timeout, over node:http (node:https loaded only for an https URL) with a keep-alive
 * agent. Not fetch: its implementation (undici) adds ~8 MiB to the wrapper's resident memory, and the
 * wrapper is meant to stay small beside the command it watches.
 */
import { Agent, request, type IncomingMessage } from 'node:http';

export interface PostAnswer {
  status: number;
  /** Retry-After in seconds, when given as a number. */
  retryAfterS: number | null;
  text: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 2 });
let httpsAgent: import('node:https').Agent | undefined;

/** Resolves with the answer; rejects with the connection error's code (ECONNREFUSED, ETIMEDOUT, …). */
export async function post(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<PostAnswer> {
  const u = new URL(url);
  let send = request;
  let via: Agent | import('node:https').Agent = agent;
  if (u.protocol === 'https:') {
    const https = await import('node:https');
    httpsAgent ??= new https.Agent({ keepAlive: true, maxSockets: 2 });
    send = https.request as typeof request;
    via = httpsAgent;
  }
  return new Promise((resolve, reject) => {
    const req = send(u, { method: 'POST', agent: via, headers: { ...headers, 'content-length': Buffer.byteLength(body) }, timeout: timeoutMs }, (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text.length < 4096 ? (text += d) : undefined));
      res.on('end', () => {
        const retryAfter = Number(res.headers['retry-after']);
        resolve({ status: res.statusCode ?? 0, retryAfterS: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null, text });
      });
      res.on('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code ?? err.message)));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code ?? err.message)));
    req.end(body);
  });
}

/** Lets the process exit while idle keep-alive sockets are open. */
export function closeConnections(): void {
  agent.destroy();
  httpsAgent?.destroy();
}
