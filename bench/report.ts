/** The summary: each target from the issue with the measured value, the ratio and PASS/FAIL; JSON for tools. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fmt } from './stats.js';

export interface TargetRow {
  name: string;
  measured: number;
  unit: string;
  /** '>=' : bigger is better; '<=' : smaller is better. */
  op: '>=' | '<=';
  target: number;
  /** measured / target. */
  ratio: number;
  pass: boolean;
  note?: string;
}

export function target(name: string, measured: number, op: '>=' | '<=', targetValue: number, unit: string, note?: string): TargetRow {
  const ok = Number.isFinite(measured) && (op === '>=' ? measured >= targetValue : measured <= targetValue);
  return { name, measured, unit, op, target: targetValue, ratio: measured / targetValue, pass: ok, note };
}

const digitsFor = (v: number) => (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);

export function printTable(rows: TargetRow[]): void {
  const cells = rows.map((r) => [
    r.name,
    `${fmt(r.measured, digitsFor(r.measured))} ${r.unit}`,
    `${r.op} ${fmt(r.target, digitsFor(r.target))} ${r.unit}`,
    Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : 'n/a',
    r.pass ? 'PASS' : 'FAIL',
    r.note ?? '',
  ]);
  const head = ['target', 'measured', 'goal', 'ratio', 'result', 'note'];
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i === 1 || i === 2 || i === 3 ? v.padStart(width[i]) : v.padEnd(width[i]))).join('  ').trimEnd();
  console.log(line(head));
  console.log(width.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}

export function writeJson(file: string, data: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
}
