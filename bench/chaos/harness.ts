/**
 * The chaos suite's shared harness: what a scenario is, what it reports (what was injected, what was checked,
 * what was lost), and how one runs inside its own time budget with its cleanup always done.
 */

/** One assertion a user would make, with what was seen. */
export interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

/** What a scenario found: the report's row for it. */
export interface ScenarioResult {
  name: string;
  title: string;
  pass: boolean;
  /** What was done to faultline (kill -9, the store gone for 120 s, a link cut, ...). */
  injected: string[];
  checks: Check[];
  /** Records acknowledged but not stored, faults or pages missed or doubled: must all be zero. */
  lost: Record<string, number>;
  /** Measurements worth printing (rates, latencies, RSS). */
  figures: Record<string, number | string>;
  durationS: number;
  budgetS: number;
  /** Set when the scenario itself broke (a helper failed, the budget ran out). */
  error?: string;
}

/** Flags every scenario may read (the command line's, after parsing). */
export interface ChaosOptions {
  /** How long the store stays unreachable in store-outage. */
  outageS: number;
  /** Overload: the capacity (spans/s) to triple; 0 = measure it in the same run. */
  capacity: number;
  /** Overload: how long the 3x load lasts. */
  overloadS: number;
  /** Shortened runs (the smoke test): every load phase scaled down. */
  quick: boolean;
  /** Progress lines go here. */
  log: (line: string) => void;
}

/** What a scenario fills in while it runs; the harness turns it into a ScenarioResult. */
export class Findings {
  readonly injected: string[] = [];
  readonly checks: Check[] = [];
  readonly lost: Record<string, number> = {};
  readonly figures: Record<string, number | string> = {};
  private readonly cleanups: (() => Promise<void> | void)[] = [];

  inject(what: string): void {
    this.injected.push(what);
  }

  check(name: string, pass: boolean, detail = ''): boolean {
    this.checks.push({ name, pass, detail });
    return pass;
  }

  /** Records a count of lost things; a non-zero count is a failed check too. */
  loss(what: string, count: number, detail = ''): void {
    this.lost[what] = (this.lost[what] ?? 0) + count;
    this.check(`nothing lost: ${what}`, count === 0, detail || `${count} lost`);
  }

  figure(name: string, value: number | string): void {
    this.figures[name] = typeof value === 'number' ? Math.round(value * 100) / 100 : value;
  }

  /** Runs at the end, newest first, whether the scenario passed, failed or ran out of time. */
  onCleanup(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  async cleanup(): Promise<void> {
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        this.check('cleanup', false, (err as Error).message);
      }
    }
  }
}

export interface Scenario {
  name: string;
  title: string;
  /** Seconds the scenario may take at the default options before it is stopped and failed. */
  budgetS(opts: ChaosOptions): number;
  run(f: Findings, opts: ChaosOptions): Promise<void>;
}

/** Runs one scenario inside its budget; a thrown error or the budget running out is a FAIL, never a crash. */
/** The scenario running now, so that an interrupted run (Ctrl-C) still removes what it made. */
let running: Findings | undefined;

/** Runs the cleanup of the scenario under way (processes, folders, namespaces); safe when none is. */
export async function abortRunning(): Promise<void> {
  await running?.cleanup();
}

export async function runScenario(s: Scenario, opts: ChaosOptions): Promise<ScenarioResult> {
  const f = new Findings();
  running = f;
  const budgetS = s.budgetS(opts);
  const t0 = performance.now();
  let error: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const budget = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`ran out of its ${budgetS} s budget`)), budgetS * 1000);
  });
  try {
    await Promise.race([s.run(f, opts), budget]);
  } catch (err) {
    error = (err as Error).message;
  } finally {
    clearTimeout(timer);
    await f.cleanup();
    running = undefined;
  }
  const pass = !error && f.checks.length > 0 && f.checks.every((c) => c.pass) && Object.values(f.lost).every((n) => n === 0);
  return {
    name: s.name,
    title: s.title,
    pass,
    injected: f.injected,
    checks: f.checks,
    lost: f.lost,
    figures: f.figures,
    durationS: Math.round((performance.now() - t0) / 100) / 10,
    budgetS,
    error,
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `fn` gives a truthy value; undefined when the time is up (the caller records the check). */
export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs: number, everyMs = 200): Promise<T | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > until) return undefined;
    await sleep(everyMs);
  }
}
