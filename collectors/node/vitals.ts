/**
 * The process's vital signs for a heartbeat, measured from inside the runtime: resident and heap memory, the
 * memory it may use, CPU, and how late the event loop runs (p99 since the previous heartbeat).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { memoryCgroup } from '../run/proc.js';

/**
 * The memory the process may use: the lower of its memory cgroup's limit (v2 or v1, the lowest on its path)
 * and V8's heap limit (set by --max-old-space-size, else derived from the machine's memory).
 */
export function memoryLimit(): number {
  const heap = getHeapStatistics().heap_size_limit;
  const cgroup = memoryCgroup().limit;
  return cgroup !== null ? Math.min(cgroup, heap) : heap;
}

export type Vitals = Record<string, number>;

export class VitalSigns {
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private cpu = process.cpuUsage();
  private cpuAt = performance.now();
  /** Read once: cgroup and heap limits do not change while a process lives. */
  private readonly limit = memoryLimit();

  constructor() {
    this.loop.enable();
  }

  /** The attributes of one heartbeat; starts the next measuring period. */
  sample(): Vitals {
    const mem = process.memoryUsage();
    const now = performance.now();
    const used = process.cpuUsage(this.cpu);
    const utilization = (used.user + used.system) / 1000 / Math.max(1, now - this.cpuAt);
    this.cpu = process.cpuUsage();
    this.cpuAt = now;
    const p99 = this.loop.count > 0 ? this.loop.percentile(99) / 1e6 : 0;
    this.loop.reset();
    return {
      'process.memory.rss': mem.rss,
      'process.memory.limit': this.limit,
      'process.runtime.heap.used': mem.heapUsed,
      'process.cpu.utilization': Math.round(utilization * 1000) / 1000,
      'nodejs.eventloop.delay.p99': Math.round(p99 * 10) / 10,
    };
  }

  stop(): void {
    this.loop.disable();
  }
}
