/**
 * A systemd unit the agent acts on through `systemctl restart|stop|start <unit>`. systemctl waits for the
 * job to finish and exits non-zero when it failed; that failure and what systemctl said are the result.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../../src/log/index.js';
import { defaultInstance, type UnitConfig } from './config.js';
import type { ActionName, Managed, OpResult } from './managed.js';

/** A systemctl job that takes longer than this is reported as failed (systemd keeps working on it). */
const SYSTEMCTL_TIMEOUT_MS = 120_000;

export class Unit implements Managed {
  readonly kind = 'unit';
  readonly name: string;
  readonly service: string;
  readonly instance: string;
  readonly host: string;
  private last: { action: string; ok: boolean; message: string; at: number } | null = null;

  constructor(
    config: UnitConfig,
    private readonly ctx: { systemctl: string; host: string; log: Logger },
  ) {
    this.name = config.name;
    this.service = config.service;
    this.instance = config.instance ?? defaultInstance(ctx.host, config.name);
    this.host = ctx.host;
  }

  act(action: ActionName): Promise<OpResult> {
    const argv = [action, this.name];
    return new Promise((resolve) => {
      execFile(this.ctx.systemctl, argv, { timeout: SYSTEMCTL_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
        const said = stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ').slice(0, 500);
        let result: OpResult;
        if (!err) result = { ok: true, message: `systemctl ${argv.join(' ')}: done` };
        else {
          const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
          const how =
            e.code === 'ENOENT' ? `"${this.ctx.systemctl}" not found (is systemd installed, and systemctl in PATH?)`
            : e.killed ? `no answer within ${SYSTEMCTL_TIMEOUT_MS / 1000} s`
            : typeof e.code === 'number' ? `exit code ${e.code}`
            : e.message;
          result = { ok: false, message: `systemctl ${argv.join(' ')} failed: ${how}${said ? `: ${said}` : ''}` };
        }
        this.last = { action, ...result, at: Date.now() };
        this.ctx.log[result.ok ? 'info' : 'warn'](result.ok ? 'unit acted on' : 'systemctl failed', { unit: this.name, action, result: result.message });
        resolve(result);
      });
    });
  }

  status() {
    return {
      name: this.name,
      kind: this.kind,
      service: this.service,
      instance: this.instance,
      last_action: this.last ? { action: this.last.action, ok: this.last.ok, message: this.last.message, at: new Date(this.last.at).toISOString() } : null,
    };
  }
}
