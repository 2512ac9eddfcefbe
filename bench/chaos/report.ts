/** The chaos report: printed, and written as JSON and Markdown under the results folder. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScenarioResult } from './harness.js';

export interface ChaosReport {
  startedAt: string;
  durationS: number;
  pass: boolean;
  options: Record<string, unknown>;
  scenarios: ScenarioResult[];
}

const mark = (pass: boolean) => (pass ? 'PASS' : 'FAIL');

/** The report of one scenario as lines of text (the console's and the Markdown's share). */
export function scenarioText(s: ScenarioResult): string[] {
  const lost = Object.entries(s.lost);
  return [
    `${mark(s.pass)}  ${s.name} — ${s.title} (${s.durationS} s of ${s.budgetS} s budget)`,
    ...(s.error ? [`  error: ${s.error}`] : []),
    '  injected:',
    ...s.injected.map((i) => `    - ${i}`),
    '  checked:',
    ...s.checks.map((c) => `    [${c.pass ? 'ok' : 'FAILED'}] ${c.name}${c.detail ? ` — ${c.detail}` : ''}`),
    `  lost: ${lost.length === 0 ? '(nothing counted)' : lost.map(([k, n]) => `${k} ${n}`).join(', ')}`,
    ...(Object.keys(s.figures).length ? ['  figures:', ...Object.entries(s.figures).map(([k, v]) => `    ${k}: ${v}`)] : []),
  ];
}

/** The closing summary (each scenario's text was printed as it finished). */
export function printReport(r: ChaosReport, write: (line: string) => void): void {
  write('');
  for (const s of r.scenarios) write(`${mark(s.pass)}  ${s.name} (${s.durationS} s)${Object.values(s.lost).some((n) => n > 0) ? ` — lost: ${Object.entries(s.lost).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')}` : ''}`);
  write(`chaos: ${r.scenarios.filter((s) => s.pass).length} passed, ${r.scenarios.filter((s) => !s.pass).length} failed in ${r.durationS} s — ${mark(r.pass)}`);
}

function markdown(r: ChaosReport): string {
  const rows = r.scenarios.map(
    (s) => `| ${s.name} | ${mark(s.pass)} | ${s.durationS} s | ${Object.entries(s.lost).map(([k, n]) => `${k}: ${n}`).join('<br>') || '—'} |`,
  );
  const details = r.scenarios.map((s) => {
    const lines = scenarioText(s);
    return [`## ${s.name}: ${mark(s.pass)}`, '', s.title, '', '```', ...lines.slice(1), '```', ''].join('\n');
  });
  return [
    `# Chaos report ${r.startedAt}`,
    '',
    `${mark(r.pass)}: ${r.scenarios.filter((s) => s.pass).length} of ${r.scenarios.length} scenarios passed in ${r.durationS} s.`,
    '',
    '| scenario | result | time | lost |',
    '|---|---|---|---|',
    ...rows,
    '',
    ...details,
  ].join('\n');
}

/** Writes chaos-<time>.json and .md (and latest.json/.md) into `dir`; returns the JSON file's path. */
export function writeReport(r: ChaosReport, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const json = `${JSON.stringify(r, null, 2)}\n`;
  const md = `${markdown(r)}\n`;
  for (const name of [`chaos-${stamp}`, 'latest']) {
    writeFileSync(join(dir, `${name}.json`), json);
    writeFileSync(join(dir, `${name}.md`), md);
  }
  return join(dir, `chaos-${stamp}.json`);
}
