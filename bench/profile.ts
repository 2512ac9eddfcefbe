/** Summarizes a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by package/file. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

export interface ProfileSummary {
  totalMs: number;
  functions: { name: string; ms: number; share: number }[];
  groups: { name: string; ms: number; share: number }[];
  /** faultline's own functions (dist/src) by inclusive time: the sample is anywhere under them. */
  ownInclusive: { name: string; ms: number; share: number }[];
}

/** node_modules/<pkg>, the repository file, node internals, or V8's pseudo-frames ((garbage collector), ...). */
function groupOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  const own = /\/dist\/(.*)$/.exec(url);
  if (own) return own[1];
  return url.startsWith('node:') ? 'node:' + url.slice(5).split('/')[0] : url;
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const totalSamples = p.samples.length || 1;
  const msPerSample = (p.endTime - p.startTime) / 1000 / totalSamples;
  const byFn = new Map<string, number>();
  const byGroup = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const short = url.replace(/^.*\/(node_modules|dist)\//, '');
    const name = url ? `${functionName || '(anonymous)'} ${short}:${lineNumber + 1}` : functionName;
    byFn.set(name, (byFn.get(name) ?? 0) + hits);
    const g = groupOf(url, functionName);
    byGroup.set(g, (byGroup.get(g) ?? 0) + hits);
  }
  const rank = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, hits]) => ({ name, ms: hits * msPerSample, share: hits / totalSamples }));
  return { totalMs: (p.endTime - p.startTime) / 1000, functions: rank(byFn), groups: rank(byGroup), ownInclusive: rank(ownInclusive(p)) };
}

function ownInclusive(p: CpuProfile): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const names = new Map<number, string | undefined>();
  for (const n of p.nodes) {
    const { functionName, url, lineNumber } = n.callFrame;
    const own = /\/dist\/(src\/.*)$/.exec(url);
    names.set(n.id, own ? `${functionName || '(anonymous)'} ${own[1]}:${lineNumber + 1}` : undefined);
  }
  const counts = new Map<string, number>();
  for (const leaf of p.samples) {
    const seen = new Set<string>();
    for (let id: number | undefined = leaf; id !== undefined && byId.has(id); id = parent.get(id)) {
      const name = names.get(id);
      if (name && !seen.has(name)) seen.add(name);
    }
    for (const name of seen) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}
