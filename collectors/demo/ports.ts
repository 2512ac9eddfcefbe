/** Ports the demo needs: a free one when asked for 0, and a clear word when a chosen one is taken. */
import { createServer } from 'node:net';

async function listenOnce(port: number): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return bound;
}

/** `port`, checked free on 127.0.0.1 (or a free one for 0); an error naming the flag when it is taken. */
export async function claimPort(port: number, flag: string): Promise<number> {
  try {
    return await listenOnce(port);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`port ${port} is ${code === 'EADDRINUSE' ? 'already in use' : `not usable (${code})`} (is another demo running?): choose another with ${flag}`);
  }
}
