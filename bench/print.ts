/** Per-phase detail lines printed as the benchmark runs. */
import type { TableSize } from './disk.js';
import type { PhaseResult } from './phases.js';
import type { ProfileSummary } from './profile.js';
import { fmt } from './stats.js';

export function phaseLine(name: string, r: PhaseResult): void {
  const l = r.load;
  const isPing = l.itemsOk === l.requestsOk;
  const parts = [
    isPing ? `${fmt(l.itemsPerS)} pings/s` : `${fmt(l.itemsPerS)} spans/s acknowledged (${fmt(l.requestsPerS)} req/s)`,
    `latency p50 ${fmt(l.latencyMs.p50, 1)} p99 ${fmt(l.latencyMs.p99, 1)} max ${fmt(l.latencyMs.max, 1)} ms`,
    `server cpu ${fmt(r.server.cpuUtil * 100)}% (cpus ${r.server.cpus}); rss max ${fmt(r.server.rssMaxMiB)} mean ${fmt(r.server.rssMeanMiB)} MiB` +
      `${r.server.rssIdleMiB ? ` (idle ${fmt(r.server.rssIdleMiB)})` : ''}; anon max ${fmt(r.server.anonMaxMiB)} mean ${fmt(r.server.anonMeanMiB)} MiB`,
    `server memory: mapped files (code: node, libchdb.so) max ${fmt(r.server.fileMaxMiB)} MiB` +
      (r.server.heapMaxMiB !== undefined
        ? `; faultline's V8 heap max ${fmt(r.server.heapMaxMiB)} mean ${fmt(r.server.heapMeanMiB ?? 0)} MiB, Buffers (external) max ${fmt(r.server.externalMaxMiB ?? 0)} MiB`
        : ''),
    `server cpu by thread: ${r.server.threads.slice(0, 8).map(([n, v]) => `${n} ${fmt(v * 100)}%`).join(', ')}`,
    `loadgen cpu ${fmt(l.cpuUtil * 100)}%`,
  ];
  if (r.storeProcess)
    parts.push(
      `store process (ClickHouse engine behind an HTTP front, cpus ${r.storeProcess.cpus}, beside the load generator): rss max ${fmt(r.storeProcess.rssMaxMiB)} mean ${fmt(r.storeProcess.rssMeanMiB)} MiB, cpu ${fmt(r.storeProcess.cpuUtil * 100)}%`,
    );
  if (r.store)
    parts.push(`store wrote ${fmt(r.store.writtenPerS)} ${isPing ? 'pings' : 'spans'}/s, shed ${r.store.shedRequests} req, WAL at end ${fmt(r.store.walBytesAtEnd / 1e6, 1)} MB, shutdown (flush) ${fmt(r.store.shutdownMs / 1000, 1)} s`);
  const bad = Object.entries(l.statuses).filter(([s]) => s !== '200');
  if (bad.length || l.transportErrors || l.partial || l.dropped)
    parts.push(`problems: ${bad.map(([s, n]) => `${n}×HTTP ${s}`).join(', ')} transport ${l.transportErrors} partial ${l.partial} dropped ${l.dropped}${l.firstProblem ? ` — first: ${l.firstProblem.slice(0, 200)}` : ''}`);
  if (l.cpuUtil > 0.9) parts.push('NOTE: the load generator used >90% of its core; the figure may be client-bound');
  else if (!r.store && r.server.cpuUtil < 0.9)
    parts.push(`NOTE: the ceiling server used ${fmt(r.server.cpuUtil * 100)}% of its core: the load generator, not the server, set this figure (a lower bound of the ceiling)`);
  console.log(`  ${name}:\n    ${parts.join('\n    ')}`);
}

/** The on-disk figures of a phase run with `disk: true`; throws when the spans table is missing. */
export function printDisk(proto: PhaseResult): { spansBefore: TableSize; spansAfter: TableSize; excAfter?: TableSize } {
  const disk = proto.disk!;
  const spansAfter = disk.after.find((t) => t.table === 'spans');
  const spansBefore = disk.before.find((t) => t.table === 'spans');
  const excAfter = disk.after.find((t) => t.table === 'exceptions');
  if (!spansAfter || !spansBefore) throw new Error('the spans table has no parts after the protobuf run');
  console.log(`  on disk: spans ${fmt(spansBefore.rows)} rows (acked ${fmt(proto.load.itemsAckedTotal)}), ${fmt(spansBefore.parts)} parts ${fmt(spansBefore.bytesOnDisk / 1e6, 1)} MB = ${fmt(spansBefore.bytesOnDisk / spansBefore.rows, 1)} B/span as written;`);
  console.log(`           after OPTIMIZE FINAL (${fmt(disk.optimizeMs / 1000, 1)} s): ${fmt(spansAfter.parts)} parts ${fmt(spansAfter.bytesOnDisk / 1e6, 1)} MB = ${fmt(spansAfter.bytesOnDisk / spansAfter.rows, 1)} B/span (uncompressed ${fmt(spansAfter.uncompressedBytes / spansAfter.rows)} B/span)`);
  if (excAfter) console.log(`           exceptions ${fmt(excAfter.rows)} rows (${fmt(disk.errorSpans)} error spans), ${fmt(excAfter.bytesOnDisk / 1e6, 2)} MB = ${fmt(excAfter.bytesOnDisk / excAfter.rows, 1)} B/row`);
  console.log(`           largest span columns: ${disk.spanColumns.map((c) => `${c.column} ${fmt(c.compressed / spansAfter.rows, 1)}`).join(', ')} (B/span)`);

  return { spansBefore, spansAfter, excAfter };
}

export function printProfile(file: string, p: ProfileSummary): void {
  const show = (list: { name: string; share: number }[], n: number) => {
    for (const f of list.slice(0, n)) console.log(`    ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.name}`);
  };
  console.log(`  profile ${file} (JavaScript thread only; shares of all samples, idle included):`);
  console.log('  by package/file (self):');
  show(p.groups, 10);
  console.log('  top functions (self):');
  show(p.functions, 15);
  console.log("  faultline's own functions (inclusive):");
  show(p.ownInclusive, 12);
}
