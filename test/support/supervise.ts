import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';

export const APP = join(packageRoot, 'dist', 'test', 'fixtures', 'apps', 'app.js');

export interface Identity {
  service: string;
  instance: string;
  version?: string;
  host?: string;
}

export interface Supervised {
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const attr = (key: string, v: string | number | boolean) => ({
  key,
  value: typeof v === 'number' ? { intValue: v } : typeof v === 'boolean' ? { boolValue: v } : { stringValue: v },
});

/**
 * Runs the fixture app as a real child process, the way a process supervisor (`faultline run`) does: the
 * child reports heartbeats and exceptions through the Node collector; its exit (code, signal, the tail of
 * its stderr) is reported from outside over OTLP/JSON, because a process killed or aborted cannot report
 * its own death. With `reportExit: false` nobody reports the exit (a host that vanished).
 */
export function supervise(
  otlpHttp: string,
  id: Identity,
  env: Record<string, string>,
  opts: { nodeArgs?: string[]; reportExit?: boolean } = {},
): Supervised {
  const reportExit = opts.reportExit ?? true;
  const started = Date.now();
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), APP], {
    env: {
      PATH: process.env.PATH ?? '',
      OTEL_SERVICE_NAME: id.service,
      OTEL_RESOURCE_ATTRIBUTES: `service.instance.id=${id.instance},service.version=${id.version ?? '1.0.0'},host.name=${id.host ?? 'test-host'}`,
      OTEL_EXPORTER_OTLP_ENDPOINT: otlpHttp,
      FAULTLINE_HEARTBEAT_INTERVAL_MS: '200',
      FAULTLINE_SUPERVISED: reportExit ? '1' : '0',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      const done = () => resolve({ code, signal });
      if (!reportExit) return done();
      const attributes = [
        ...(code !== null ? [attr('process.exit.code', code)] : []),
        ...(signal ? [attr('process.exit.signal', signal)] : []),
        attr('process.exit.reason', signal ? 'signal' : code === 0 ? 'graceful' : 'error'),
        attr('process.stderr.tail', stderr.slice(-4000)),
        attr('process.runtime.ms', Date.now() - started),
      ];
      const body = {
        resourceLogs: [
          {
            resource: {
              attributes: [
                attr('service.name', id.service),
                attr('service.instance.id', id.instance),
                attr('service.version', id.version ?? '1.0.0'),
                attr('host.name', id.host ?? 'test-host'),
              ],
            },
            scopeLogs: [{ logRecords: [{ timeUnixNano: `${Date.now()}000000`, eventName: 'process.exit', attributes }] }],
          },
        ],
      };
      fetch(`${otlpHttp}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(done, done);
    }),
  );
  return { proc, exited };
}
