/** A minimal keep-alive HTTP client for the load generator: status, latency-relevant timing, small bodies. */
import http from 'node:http';

export interface Reply {
  status: number;
  body: Buffer;
  /** Seconds from a Retry-After header (429/503), if any. */
  retryAfterS?: number;
}

export function keepAliveAgent(connections: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, scheduling: 'fifo' });
}

/** One request; resolves with the status and the response body (rejects only on transport errors). */
export function send(agent: http.Agent, port: number, method: string, path: string, body?: Buffer, contentType?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = {};
    if (body) {
      headers['content-type'] = contentType ?? 'application/octet-stream';
      headers['content-length'] = body.length;
    }
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const retry = Number(res.headers['retry-after']);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), retryAfterS: Number.isFinite(retry) ? retry : undefined }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
