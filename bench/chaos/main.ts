/**
 * `npm run chaos`: the chaos suite. Runs each scenario against real faultline processes inside its own
 * time budget, prints what was injected, checked and lost, writes the report as JSON and Markdown, and
 * exits 1 when any scenario failed (2 on a usage error).
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../src/paths.js';
import { abortRunning, runScenario, type ChaosOptions, type ScenarioResult } from './harness.js';
import { printReport, scenarioText, writeReport, type ChaosReport } from './report.js';
import { SCENARIOS } from './scenarios/index.js';

const HELP = `usage: npm run chaos -- [options]

Runs the chaos suite against real faultline processes (loopback and network namespaces only) and reports,
per scenario, what was injected, what was checked and what was lost. Exits 1 if any scenario failed.

options:
  --list               list the scenarios with their time budgets, and exit
  --only NAME[,NAME]   run only these scenarios
  --outage-s N         store-outage: how long the store stays unreachable (default 120)
  --overload-s N       overload: how long the 3x load lasts (default 60)
  --capacity N         overload: the capacity in spans/s to triple (default: measured in the same run)
  --quick              shortened load phases (what the smoke test runs)
  --results DIR        where the JSON and Markdown reports go (default bench/results/chaos)
  -h, --help           this text
`;

function usage(message: string): never {
  process.stderr.write(`chaos: ${message}\n\n${HELP}`);
  process.exit(2);
}

function positive(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) usage(`--${name} takes a number ≥ ${min}, got "${v}"`);
  return n;
}

let args;
try {
  args = parseArgs({
    options: {
      list: { type: 'boolean' },
      only: { type: 'string' },
      'outage-s': { type: 'string' },
      'overload-s': { type: 'string' },
      capacity: { type: 'string' },
      quick: { type: 'boolean' },
      results: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
} catch (err) {
  usage((err as Error).message);
}
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const opts: ChaosOptions = {
  outageS: positive('outage-s', args['outage-s'], 120, 1),
  overloadS: positive('overload-s', args['overload-s'], 60, 1),
  capacity: positive('capacity', args.capacity, 0),
  quick: args.quick ?? false,
  log: (line) => process.stdout.write(`${line}\n`),
};

if (args.list) {
  for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(16)} ${String(s.budgetS(opts)).padStart(4)} s  ${s.title}\n`);
  process.exit(0);
}

const names = args.only ? args.only.split(',').map((s) => s.trim()).filter(Boolean) : SCENARIOS.map((s) => s.name);
const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
if (unknown.length) usage(`unknown scenario ${unknown.map((n) => `"${n}"`).join(', ')} (--list shows them)`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    opts.log(`chaos: ${signal}: cleaning up the scenario under way`);
    void abortRunning().finally(() => process.exit(130));
  });
}

const startedAt = new Date().toISOString();
const t0 = performance.now();
const results: ScenarioResult[] = [];
for (const s of SCENARIOS.filter((x) => names.includes(x.name))) {
  opts.log(`chaos: ${s.name} — ${s.title} (budget ${s.budgetS(opts)} s)`);
  const r = await runScenario(s, opts);
  for (const line of scenarioText(r)) opts.log(line);
  results.push(r);
}
const report: ChaosReport = {
  startedAt,
  durationS: Math.round((performance.now() - t0) / 100) / 10,
  pass: results.every((r) => r.pass),
  options: { outageS: opts.outageS, overloadS: opts.overloadS, capacity: opts.capacity, quick: opts.quick },
  scenarios: results,
};
printReport(report, opts.log);
const file = writeReport(report, args.results ?? join(packageRoot, 'bench', 'results', 'chaos'));
opts.log(`report: ${file} (and .md)`);
process.exit(report.pass ? 0 : 1);
