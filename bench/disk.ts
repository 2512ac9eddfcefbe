/**
 * On-disk size of a stopped faultline's embedded store. Run as its own process (one chDB engine per
 * process): node dist/bench/disk.js <data_dir>. Prints a DiskReport as JSON on stdout.
 * Parts are measured as written, then again after OPTIMIZE ... FINAL (merged, as they end up at rest).
 */
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';

export interface TableSize {
  table: string;
  rows: number;
  parts: number;
  bytesOnDisk: number;
  uncompressedBytes: number;
}
export interface DiskReport {
  before: TableSize[];
  after: TableSize[];
  optimizeMs: number;
  /** Largest columns of the spans table after the merge (compressed bytes). */
  spanColumns: { column: string; compressed: number; uncompressed: number }[];
  errorSpans: number;
}

const SIZES = `SELECT table, sum(rows) AS rows, count() AS parts, sum(bytes_on_disk) AS bytesOnDisk,
  sum(data_uncompressed_bytes) AS uncompressedBytes FROM system.parts
  WHERE database = 'faultline' AND active AND table IN ('spans', 'exceptions') GROUP BY table ORDER BY table`;

async function main(dataDir: string): Promise<DiskReport> {
  const { createChdbConnection } = await import('chdb/connection');
  const client = createClient({ connection: createChdbConnection({ path: join(dataDir, 'clickhouse') }) } as Parameters<typeof createClient>[0]);
  const query = async <T>(sql: string): Promise<T[]> => (await (await client.query({ query: sql, format: 'JSONEachRow' })).json()) as T[];
  const sizes = async () => (await query<Record<string, string>>(SIZES)).map((r) => ({
    table: r.table, rows: Number(r.rows), parts: Number(r.parts), bytesOnDisk: Number(r.bytesOnDisk), uncompressedBytes: Number(r.uncompressedBytes),
  }));
  try {
    const before = await sizes();
    const t = performance.now();
    await client.command({ query: 'OPTIMIZE TABLE faultline.spans FINAL' });
    await client.command({ query: 'OPTIMIZE TABLE faultline.exceptions FINAL' });
    const optimizeMs = performance.now() - t;
    const after = await sizes();
    const spanColumns = (
      await query<Record<string, string>>(
        `SELECT column, sum(column_data_compressed_bytes) AS c, sum(column_data_uncompressed_bytes) AS u FROM system.parts_columns
         WHERE database = 'faultline' AND table = 'spans' AND active GROUP BY column ORDER BY c DESC LIMIT 8`,
      )
    ).map((r) => ({ column: r.column, compressed: Number(r.c), uncompressed: Number(r.u) }));
    const [err] = await query<{ n: string }>(`SELECT count() AS n FROM faultline.spans WHERE status_code = 'error'`);
    return { before, after, optimizeMs, spanColumns, errorSpans: Number(err?.n ?? 0) };
  } finally {
    await client.close();
  }
}

main(process.argv[2] ?? '').then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0)),
  (err: Error) => {
    process.stderr.write(`disk: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
