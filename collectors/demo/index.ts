#!/usr/bin/env node
/**
 * `npm run demo`: faultline with the embedded store, a fleet of demo services supervised by faultline
 * agent, and a schedule of things going wrong (schedule.ts) — printed up front, logged as each happens,
 * with what faultline made of it (faults, supervisor actions, notifications) as it makes it. Ctrl-C (or
 * SIGTERM) stops the fleet, then faultline, and leaves no process behind.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { agentConfig, checkConfigs, faultlineConfig, type Ports } from './config.js';
import { runCronJob, SERVICE, startAgent, startFaultline, waitReady } from './fleet.js';
import { HELP, parseDemoArgs, UsageError, type DemoOptions } from './options.js';
import { listenForPeople } from './people.js';
import { claimPort } from './ports.js';
import { ProcessTree, type Managed } from './processes.js';
import { CRON_CHECK, describePlan, SCHEDULE, scaled, STORY_SECONDS } from './schedule.js';
import { StoryWatcher } from './watch.js';

/** Time for the fleet to start before the story's clock begins. */
const LEAD_MS = 5000;

/** Start-up was cut short by a signal: not an error. */
class Interrupted extends Error {}

/** Where the demo keeps its store, configs and logs: a new temporary folder, or --dir. */
function demoDir(opts: DemoOptions): { dir: string; temporary: boolean } {
  if (!opts.dir) return { dir: mkdtempSync(join(tmpdir(), 'faultline-demo-')), temporary: true };
  const dir = resolve(opts.dir);
  if (existsSync(join(dir, 'data'))) throw new UsageError(`--dir: ${dir} holds the store of an earlier run (${join(dir, 'data')}); remove it or choose another folder`);
  mkdirSync(dir, { recursive: true });
  return { dir, temporary: false };
}

export async function main(argv: string[]): Promise<number> {
  let opts: DemoOptions;
  let where: { dir: string; temporary: boolean };
  try {
    const parsed = parseDemoArgs(argv);
    if (parsed === 'help') {
      process.stdout.write(HELP);
      return 0;
    }
    opts = parsed;
    where = demoDir(opts);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`demo: ${err.message}\nRun "npm run demo -- --help" for usage.\n`);
    return 2;
  }
  const { dir } = where;

  let t0 = 0;
  const clock = () => (t0 === 0 || Date.now() < t0 ? '      ' : `+${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`);
  const say = (what: string, text: string) => void process.stdout.write(`${clock()}  ${what.padEnd(10)} ${text}\n`);

  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const managed: Managed[] = [];
  const timers: NodeJS.Timeout[] = [];
  const tree = new ProcessTree();
  let watcher: StoryWatcher | undefined;
  let people: Awaited<ReturnType<typeof listenForPeople>> | undefined;
  let faultline: Managed | undefined;

  let stopping = false;
  let wake: (reason: string) => void = () => undefined;
  const stopped = new Promise<string>((r) => (wake = r));
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) return wake(signal);
    // A second Ctrl-C: no more waiting.
    process.stdout.write('demo: second signal: killing everything now\n');
    for (const m of managed) void m.stop('SIGKILL', 0);
    tree.killLeftovers();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  /** A step of the start-up, cut short by Ctrl-C. */
  const untilStopped = <T>(step: Promise<T>): Promise<T> =>
    Promise.race([step, stopped.then((reason) => Promise.reject(reason.startsWith('SIG') ? new Interrupted(reason) : new Error(`${reason} while starting; see the logs in ${dir}`)))]);

  let code = 0;
  try {
    // Opened and escalated faults are told as they come; resolutions and new signatures only counted.
    people = await listenForPeople(opts.peoplePort, secret, (n) => {
      if (n.type === 'fault.opened' || n.type === 'fault.escalated') say('people', `${n.type === 'fault.escalated' ? 'paged' : 'told'}: ${n.title}`);
    });
    const ports: Ports = {
      http: opts.httpPort && (await claimPort(opts.httpPort, '--http-port')),
      otlp: opts.otlpPort && (await claimPort(opts.otlpPort, '--otlp-port')),
      grpc: opts.grpcPort && (await claimPort(opts.grpcPort, '--grpc-port')),
      agent: await claimPort(opts.agentPort, '--agent-port'),
      people: people.port,
      payments: await claimPort(opts.paymentsPort, '--payments-port'),
    };
    const flConfig = faultlineConfig({ dataDir: join(dir, 'data'), ports, secret, speed: opts.speed });
    // Checked before anything starts (the agent's again once faultline's real ports are known).
    checkConfigs(flConfig, agentConfig({ ports, secret, speed: opts.speed, t0: Date.now(), node: process.execPath, service: SERVICE }));
    const flConfigFile = join(dir, 'faultline.yaml');
    writeFileSync(flConfigFile, `# faultline's configuration for the demo (written by npm run demo)\n${stringify(flConfig)}`);

    say('start', `faultline with the embedded store in ${dir} …`);
    const started = startFaultline(flConfigFile, join(dir, 'faultline.log'));
    faultline = started.managed;
    managed.push(started.managed);
    void started.managed.exited.then(() => wake('faultline exited'));
    const fl = await untilStopped(started.listening);
    await untilStopped(waitReady(fl.http));
    ports.http = Number(new URL(fl.http).port);
    ports.otlp = Number(new URL(fl.otlp).port);

    t0 = Date.now() + LEAD_MS;
    const agent = agentConfig({ ports, secret, speed: opts.speed, t0, node: process.execPath, service: SERVICE });
    checkConfigs(flConfig, agent);
    const agentFile = join(dir, 'agent.yaml');
    writeFileSync(agentFile, `# faultline agent's configuration for the demo (written by npm run demo)\n${stringify(agent)}`);
    const fleetLog = join(dir, 'fleet.log');
    const agentProcess = startAgent(agentFile, fleetLog);
    managed.push(agentProcess);
    void agentProcess.exited.then(() => wake('the agent exited'));
    tree.remember();
    timers.push(setInterval(() => tree.remember(), 1000));

    process.stdout.write(
      [
        '',
        `faultline demo${opts.speed !== 1 ? ` at ${opts.speed}× speed` : ''}`,
        `  dashboard   ${fl.http}/`,
        `  API         ${fl.http}/api/v1/faults   ${fl.http}/api/v1/actions   ${fl.http}/api/v1/supervision`,
        `  OTLP        ${fl.otlp}   (send your own telemetry too)`,
        `  configs     ${flConfigFile}   ${agentFile}`,
        `  logs        ${join(dir, 'faultline.log')}   ${fleetLog}`,
        '',
        `The fleet: ${agent.programs.map((p) => p.name).join(', ')} (supervised by faultline agent), and ${CRON_CHECK} (a cron job).`,
        'What will happen, and what faultline should make of it:',
        ...describePlan(opts.speed),
        '',
        'Ctrl-C stops everything.',
        '',
      ].join('\n'),
    );

    for (const m of SCHEDULE)
      timers.push(
        setTimeout(() => {
          say('mischief', m.says);
          if (m.who.includes(CRON_CHECK) && m.what !== 'cron-skip') {
            const run = runCronJob(m.what, { http: fl.http, otlp: fl.otlp, speed: opts.speed, logFile: join(dir, 'cron.log') });
            managed.push(run);
          }
        }, t0 + scaled(m.at, opts.speed) - Date.now()),
      );

    watcher = new StoryWatcher(fl.http, say);
    watcher.start();
    const w = watcher;
    timers.push(
      setTimeout(async () => {
        const missing = w.missingKinds();
        const grouped = await w.groupedSignatures();
        say('summary', `fault kinds seen: ${[...w.tally.kinds].sort().join(', ')}${missing.length ? ` (not yet: ${missing.join(', ')})` : ' — every kind'}`);
        say('summary', `supervisor actions: ${w.tally.actions} (${w.tally.succeeded} succeeded), escalations to root: ${w.tally.escalations}, notifications to people: ${people?.received.length ?? 0} (${people?.received.filter((n) => n.type === 'signature.new').length ?? 0} new signatures)`);
        if (grouped.length > 0) say('summary', `signatures grouping several faults: ${grouped.join('; ')}`);
        say('summary', `the story is over; the fleet keeps running — browse ${fl.http}/ and press Ctrl-C to stop`);
      }, t0 + scaled(STORY_SECONDS, opts.speed) - Date.now()),
    );

    const reason = await stopped;
    if (reason === 'faultline exited' || reason === 'the agent exited') {
      say('stop', `${reason} unexpectedly; see ${join(dir, reason === 'faultline exited' ? 'faultline.log' : 'fleet.log')}`);
      code = 1;
    }
  } catch (err) {
    if (!(err instanceof Interrupted)) {
      process.stderr.write(`demo: ${(err as Error).message}\n`);
      code = 1;
    }
  } finally {
    stopping = true;
    say('stop', 'stopping the fleet, then faultline …');
    for (const t of timers) clearTimeout(t);
    watcher?.stop();
    tree.remember();
    // The fleet (and any cron run) first, so faultline records how they ended; faultline last.
    await Promise.all(managed.filter((m) => m !== faultline).map((m) => m.stop('SIGTERM', 10_000)));
    await faultline?.stop('SIGTERM', 30_000);
    await people?.close();
    const left = tree.killLeftovers();
    if (left.length > 0) say('stop', `ended ${left.length} leftover process(es): ${left.join(', ')}`);
    if (where.temporary) rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    else say('stop', `the store, configs and logs stay in ${dir}`);
    say('stop', 'done');
  }
  return code;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`demo: unexpected error: ${err.message}\n`);
    process.exit(1);
  },
);
