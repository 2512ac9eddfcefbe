/**
 * Loaded into the faultline process under test with `--import` (bench only): writes
 * process.memoryUsage() to $BENCH_MEMPROBE_FILE twice a second, so the harness can tell faultline's own
 * JavaScript memory (V8 heap, Buffers) apart from the resident size of the whole process, which also holds
 * the embedded engine (libchdb.so's mapped code and the engine's own allocations).
 */
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_MEMPROBE_FILE;
if (file) {
  const write = () => {
    try {
      writeFileSync(file, JSON.stringify(process.memoryUsage()));
    } catch {
      // the run's folder is being removed
    }
  };
  write();
  setInterval(write, 500).unref();
}
