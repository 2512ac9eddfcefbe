import { execFile } from 'node:child_process';
import type { Logger } from '../log/index.js';

/**
 * The service-manager side of systemd's `Type=notify` protocol, spoken through the `systemd-notify` tool
 * (Node has no unix datagram sockets): READY=1 once faultline listens, WATCHDOG=1 while its event loop
 * runs, STOPPING=1 when it shuts down. Does nothing unless systemd set NOTIFY_SOCKET. The unit needs
 * `NotifyAccess=all`, as the messages come from the tool's process, not faultline's.
 */
export class SystemdNotifier {
  private timer?: NodeJS.Timeout;
  private warned = false;
  readonly enabled: boolean;
  /** Half the watchdog period systemd asked for (WATCHDOG_USEC), or undefined without a watchdog. */
  readonly watchdogIntervalMs?: number;

  constructor(
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.enabled = Boolean(env.NOTIFY_SOCKET);
    const usec = Number(env.WATCHDOG_USEC);
    // WATCHDOG_PID names the process the watchdog is for; a child that inherited the variables is not it.
    const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
    if (this.enabled && forUs && Number.isFinite(usec) && usec > 0) this.watchdogIntervalMs = Math.max(100, Math.floor(usec / 2000));
  }

  /** Tells systemd the service is up, and starts the watchdog pings. */
  ready(status: string): void {
    if (!this.enabled) return;
    this.send(['--ready', `--status=${status}`]);
    if (this.watchdogIntervalMs === undefined) return;
    // A timer, so a blocked or wedged event loop stops the pings and systemd restarts faultline.
    this.timer = setInterval(() => this.send(['WATCHDOG=1']), this.watchdogIntervalMs);
    this.timer.unref();
    this.log.info('systemd watchdog armed', { interval_ms: this.watchdogIntervalMs });
  }

  status(text: string): void {
    if (this.enabled) this.send([`--status=${text}`]);
  }

  /** Tells systemd the service is stopping (a shutdown that takes a while is not a hang); stops the pings. */
  stopping(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.enabled) this.send(['STOPPING=1', '--status=flushing the write-ahead log to the store']);
  }

  private send(args: string[]): void {
    execFile('systemd-notify', args, { env: this.env, timeout: 5000 }, (err) => {
      if (!err || this.warned) return;
      // Once: a missing tool or socket would otherwise log at every watchdog tick.
      this.warned = true;
      this.log.warn('cannot notify systemd (is systemd-notify installed, and NotifyAccess=all set?)', { error: err.message });
    });
  }
}
