import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { open, readFile, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { TableName } from '../store/index.js';

/**
 * The write-ahead log: an acknowledged request's rows are appended to the open segment file before the
 * client hears "ok", so they survive `kill -9`. A segment is sealed after a batch worth of rows or about a
 * second, written to the store as one insert per table, then deleted. The segment's file name is the
 * insert's deduplication token, so writing a segment again after a crash stores its rows once.
 *
 * Line format: `<table>\t<JSONEachRow row>\n`. A torn last line (killed mid-write) was never acknowledged
 * and is dropped on read.
 */

export interface SealedSegment {
  name: string;
  path: string;
  bytes: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class Segment {
  bytes = 0;
  rows = 0;
  readonly openedAt = Date.now();
  private fd?: FileHandle;
  private queue: string[] = [];
  private waiters: Waiter[] = [];
  private writing?: Promise<void>;

  constructor(
    readonly name: string,
    readonly path: string,
    private readonly fsync: boolean,
  ) {}

  /** Appends lines; resolves once they are in the file (and on disk, with fsync). Concurrent appends share one write. */
  append(text: string, rows: number): Promise<void> {
    this.bytes += Buffer.byteLength(text);
    this.rows += rows;
    return new Promise((resolve, reject) => {
      this.queue.push(text);
      this.waiters.push({ resolve, reject });
      this.writing ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const text = this.queue.join('');
      const waiters = this.waiters;
      this.queue = [];
      this.waiters = [];
      try {
        this.fd ??= await open(this.path, 'a');
        await this.fd.write(text);
        if (this.fsync) await this.fd.datasync();
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err);
      }
    }
    this.writing = undefined;
  }

  /** Waits for pending appends and closes the file; the segment is then immutable. */
  async seal(): Promise<SealedSegment> {
    while (this.writing) await this.writing;
    await this.fd?.close();
    this.fd = undefined;
    return { name: this.name, path: this.path, bytes: this.bytes };
  }
}

export class WalDir {
  private seq = 0;
  /** Names sort in creation order across restarts: start time, then pid, then a sequence number. */
  private readonly prefix = `seg-${String(Date.now()).padStart(15, '0')}-${process.pid}-`;

  constructor(
    readonly dir: string,
    private readonly fsync: boolean,
  ) {
    mkdirSync(dir, { recursive: true });
    mkdirSync(join(dir, 'rejected'), { recursive: true });
  }

  newSegment(): Segment {
    const name = `${this.prefix}${String(++this.seq).padStart(8, '0')}`;
    return new Segment(name, join(this.dir, `${name}.wal`), this.fsync);
  }

  /** Segments left by an earlier run (crash or store outage), oldest first: they are written before new ones. */
  leftover(): SealedSegment[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.wal'))
      .sort()
      .map((f) => ({ name: f.slice(0, -4), path: join(this.dir, f), bytes: statSync(join(this.dir, f)).size }));
  }

  async remove(seg: SealedSegment): Promise<void> {
    await unlink(seg.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /** Keeps rows the store refuses for good, with the reason, for a person to inspect; never deleted silently. */
  async keepRejected(seg: SealedSegment, table: string, lines: string[], reason: string): Promise<string> {
    const to = join(this.dir, 'rejected', `${seg.name}.${table}.wal`);
    await writeFile(to, `# ${reason.split('\n')[0]}\n${lines.join('\n')}\n`);
    return to;
  }
}

/** Reads a sealed segment back as JSONEachRow bodies per table. */
export async function readSegment(seg: SealedSegment): Promise<Map<TableName, { body: string; rows: number }>> {
  const text = await readFile(seg.path, 'utf8');
  const end = text.lastIndexOf('\n');
  const byTable = new Map<TableName, string[]>();
  let pos = 0;
  while (pos <= end) {
    const nl = text.indexOf('\n', pos);
    const tab = text.indexOf('\t', pos);
    if (tab > pos && tab < nl) {
      const table = text.slice(pos, tab) as TableName;
      let lines = byTable.get(table);
      if (!lines) byTable.set(table, (lines = []));
      lines.push(text.slice(tab + 1, nl + 1));
    }
    pos = nl + 1;
  }
  const out = new Map<TableName, { body: string; rows: number }>();
  for (const [table, lines] of byTable) out.set(table, { body: lines.join(''), rows: lines.length });
  return out;
}
