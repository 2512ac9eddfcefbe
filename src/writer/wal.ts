import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { createReadStream, type ReadStream } from 'node:fs';
import { open, readFile, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { TABLES, type TableName } from '../store/index.js';

/**
 * The write-ahead log: an acknowledged request's rows are appended to the open segment before the client
 * hears "ok", so they survive `kill -9`. A segment is sealed after a batch worth of rows or about a second,
 * written to the store as one insert per table, then deleted. The segment's name is the insert's
 * deduplication token (`<segment>:<table>`), so writing a segment again after a crash stores its rows once.
 *
 * A segment is one file per table, `<segment>.<table>.wal`, holding that table's JSONEachRow lines: the
 * flush loop hands a file's bytes to the store as they are, without splitting or re-joining them. A torn
 * last line (killed mid-write) was never acknowledged and is dropped on read. A file may instead start
 * with a header line, the JSON array of its column names, followed by JSONCompactEachRow lines (arrays of
 * values in that order): rows without their keys, cheaper to write and for the store to parse.
 *
 * Segments written before per-table files (`<segment>.wal`, lines `<table>\t<JSONEachRow row>`) are still
 * read, split per table, so that a WAL left by an older version is replayed with the same tokens.
 */

/**
 * The store table the resource attribute sets go to (migration 006): written first, since the rows of the
 * other tables refer to them.
 */
export const RESOURCES = 'otlp_resources';

/** What a WAL file holds: the rows of a table, or the resource sets. */
export type WalTable = TableName | typeof RESOURCES;

export interface SegmentFile {
  /** The table of a per-table file; undefined for a legacy file of `<table>\t<row>` lines. */
  table?: WalTable;
  path: string;
  bytes: number;
  /** Lines in the file (the header not counted), when known (sealed by this process); counted on read otherwise. */
  rows?: number;
}

/** One append's worth of a table's lines; `columns` (JSON array text) when the lines are value arrays. */
export interface WalPart {
  buf: Buffer;
  rows: number;
  columns?: string;
}

export interface SealedSegment {
  name: string;
  files: SegmentFile[];
  bytes: number;
}

/** The rows of a segment file as a byte range of it: streamed to a server store, never held in memory. */
export interface FileRange {
  path: string;
  start: number;
  /** Exclusive. */
  end: number;
}

/** One table's rows of a sealed segment, ready for the store. */
export interface TableBody {
  table: WalTable;
  body: Buffer | FileRange;
  rows: number;
  /** The columns of JSONCompactEachRow lines (absent: JSONEachRow). */
  columns?: string[];
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface OpenFile {
  path: string;
  bytes: number;
  rows: number;
  /** The header line of a file of value arrays (its columns), written ahead of its first lines. */
  columns?: string;
  headerWritten?: boolean;
  fd?: FileHandle;
}

const NL = 0x0a;
const OPEN_BRACKET = 0x5b;

export class Segment {
  bytes = 0;
  rows = 0;
  readonly openedAt = Date.now();
  private readonly files = new Map<WalTable, OpenFile>();
  private queue = new Map<WalTable, Buffer[]>();
  private waiters: Waiter[] = [];
  private writing?: Promise<void>;

  constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly fsync: boolean,
  ) {}

  /**
   * Whether appending these parts would mix layouts in a file (value arrays of other columns, or value
   * arrays and objects): the writer then starts a new segment.
   */
  conflicts(parts: Map<WalTable, WalPart>): boolean {
    for (const [table, part] of parts) {
      const f = this.files.get(table);
      if (f && f.rows > 0 && f.columns !== part.columns) return true;
    }
    return false;
  }

  /**
   * Appends each table's lines to its file; resolves once all are in the files (and on disk, with fsync).
   * Concurrent appends share one write per file.
   */
  append(parts: Map<WalTable, WalPart>, rows: number): Promise<void> {
    this.rows += rows;
    return new Promise((resolve, reject) => {
      for (const [table, { buf, rows: lines, columns }] of parts) {
        this.bytes += buf.length;
        const f = this.file(table);
        f.rows += lines;
        if (columns !== undefined && f.columns === undefined) {
          f.columns = columns;
          this.bytes += columns.length + 1;
        }
        const q = this.queue.get(table);
        if (q) q.push(buf);
        else this.queue.set(table, [buf]);
      }
      this.waiters.push({ resolve, reject });
      this.writing ??= this.drain();
    });
  }

  private file(table: WalTable): OpenFile {
    let f = this.files.get(table);
    if (!f) this.files.set(table, (f = { path: join(this.dir, `${this.name}.${table}.wal`), bytes: 0, rows: 0 }));
    return f;
  }

  private async writeTable(table: WalTable, bufs: Buffer[]): Promise<void> {
    const f = this.file(table);
    f.fd ??= await open(f.path, 'a');
    if (f.columns !== undefined && !f.headerWritten) {
      // The header goes out with the first lines, in the same write.
      bufs = [Buffer.from(`${f.columns}\n`), ...bufs];
      f.headerWritten = true;
    }
    const buf = bufs.length === 1 ? bufs[0] : Buffer.concat(bufs);
    for (let off = 0; off < buf.length; ) off += (await f.fd.write(buf, off)).bytesWritten;
    f.bytes += buf.length;
    if (this.fsync) await f.fd.datasync();
  }

  private async drain(): Promise<void> {
    while (this.waiters.length > 0) {
      const queue = this.queue;
      const waiters = this.waiters;
      this.queue = new Map();
      this.waiters = [];
      try {
        await Promise.all([...queue].map(([table, texts]) => this.writeTable(table, texts)));
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err);
      }
    }
    this.writing = undefined;
  }

  /** Waits for pending appends and closes the files; the segment is then immutable. */
  async seal(): Promise<SealedSegment> {
    while (this.writing) await this.writing;
    const files: SegmentFile[] = [];
    for (const [table, f] of this.files) {
      if (!f.fd) continue;
      await f.fd.close();
      f.fd = undefined;
      files.push({ table, path: f.path, bytes: f.bytes, rows: f.rows });
    }
    return { name: this.name, files, bytes: this.bytes };
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
    return new Segment(name, this.dir, this.fsync);
  }

  /** Segments left by an earlier run (crash or store outage), oldest first: they are written before new ones. */
  leftover(): SealedSegment[] {
    const segments = new Map<string, SealedSegment>();
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith('.wal')) continue;
      const base = f.slice(0, -4);
      const dot = base.indexOf('.');
      const name = dot < 0 ? base : base.slice(0, dot);
      const path = join(this.dir, f);
      const bytes = statSync(path).size;
      let seg = segments.get(name);
      if (!seg) segments.set(name, (seg = { name, files: [], bytes: 0 }));
      seg.files.push({ table: dot < 0 ? undefined : (base.slice(dot + 1) as WalTable), path, bytes });
      seg.bytes += bytes;
    }
    return [...segments.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Deletes a written segment's files (a file already gone is fine: deleting is retried after a crash). */
  async remove(seg: SealedSegment): Promise<void> {
    for (const f of seg.files) {
      await unlink(f.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
  }

  /**
   * Keeps rows the store refuses for good, with the reason (and the columns of value arrays), for a person
   * to inspect; never deleted silently.
   */
  async keepRejected(seg: SealedSegment, table: string, lines: string[], reason: string, columns?: string[]): Promise<string> {
    const to = join(this.dir, 'rejected', `${seg.name}.${table}.wal`);
    const header = columns ? `# columns: ${JSON.stringify(columns)}\n` : '';
    await writeFile(to, `# ${reason.split('\n')[0]}\n${header}${lines.join('\n')}\n`);
    return to;
  }
}

/** Whole lines of a file: up to and including its last newline (a torn last line is dropped). */
function wholeLines(buf: Buffer): { body: Buffer; rows: number } {
  const end = buf.lastIndexOf(NL) + 1;
  let rows = 0;
  for (let i = buf.indexOf(NL); i >= 0 && i < end; i = buf.indexOf(NL, i + 1)) rows++;
  return { body: end === buf.length ? buf : buf.subarray(0, end), rows };
}

/**
 * Reads a sealed segment back as one JSONEachRow body per table, in the order the tables are written.
 * With `ranges`, the row tables' files this process sealed (whole, by construction) come back as byte
 * ranges of the files rather than in memory: an insert over HTTP streams them, so a segment of 64 MiB
 * costs the flush loop 64 KiB of buffer, not 64 MiB. The resource sets are always read (the writer
 * remembers their ids).
 */
export async function readSegment(seg: SealedSegment, opts: { ranges?: boolean } = {}): Promise<TableBody[]> {
  const out: TableBody[] = [];
  for (const f of seg.files) {
    if (f.table === undefined) {
      out.push(...(await readLegacy(f.path)));
      continue;
    }
    const range = opts.ranges && f.table !== RESOURCES && f.rows !== undefined ? await fileRange(f) : undefined;
    if (range) {
      if (range.rows > 0) out.push({ table: f.table, body: range.body, rows: range.rows, columns: range.columns });
      continue;
    }
    let buf = await readFile(f.path);
    // A file this process sealed is whole; one left by a crash may end in a torn line.
    const whole = f.rows !== undefined && buf.length === f.bytes;
    let columns: string[] | undefined;
    if (buf[0] === OPEN_BRACKET) {
      // Value arrays: the first line is the columns (a file torn inside it holds no rows).
      const nl = buf.indexOf(NL);
      if (nl < 0) continue;
      columns = JSON.parse(buf.toString('utf8', 0, nl)) as string[];
      buf = buf.subarray(nl + 1);
    }
    const { body, rows } = whole ? { body: buf, rows: f.rows! } : wholeLines(buf);
    if (rows > 0) out.push({ table: f.table, body, rows, columns });
  }
  const order = (t: WalTable) => {
    if (t === RESOURCES) return -1;
    const i = TABLES.indexOf(t);
    return i < 0 ? TABLES.length : i;
  };
  return out.sort((a, b) => order(a.table) - order(b.table));
}

const HEADER_PROBE = 64 * 1024;

/**
 * The rows of a whole file as a byte range (after its header of columns, if any); undefined when the file
 * is not as this process sealed it, or its header is longer than the probe: then it is read as usual.
 */
async function fileRange(f: SegmentFile): Promise<{ body: FileRange; rows: number; columns?: string[] } | undefined> {
  const fd = await open(f.path, 'r');
  try {
    const { size } = await fd.stat();
    if (size !== f.bytes) return undefined;
    const head = Buffer.alloc(Math.min(size, HEADER_PROBE));
    const { bytesRead } = await fd.read(head, 0, head.length, 0);
    let start = 0;
    let columns: string[] | undefined;
    if (head[0] === OPEN_BRACKET) {
      const nl = head.subarray(0, bytesRead).indexOf(NL);
      if (nl < 0) return undefined;
      columns = JSON.parse(head.toString('utf8', 0, nl)) as string[];
      start = nl + 1;
    }
    return { body: { path: f.path, start, end: size }, rows: f.rows!, columns };
  } finally {
    await fd.close();
  }
}

export const isFileRange = (body: Buffer | FileRange): body is FileRange => !Buffer.isBuffer(body);

/** The bytes of a body as a stream (a file range is read in 64 KiB chunks). */
export function bodyStream(body: FileRange): ReadStream {
  return createReadStream(body.path, { start: body.start, end: body.end - 1, highWaterMark: 64 * 1024 });
}

/** The bytes of a body in memory (a file range read whole: for the rare row-by-row retry). */
export async function bodyBytes(body: Buffer | FileRange): Promise<Buffer> {
  if (!isFileRange(body)) return body;
  const buf = await readFile(body.path);
  return buf.subarray(body.start, body.end);
}

/** A segment file of the older format: `<table>\t<row>` lines, split per table. */
async function readLegacy(path: string): Promise<TableBody[]> {
  const text = await readFile(path, 'utf8');
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
  return [...byTable].map(([table, lines]) => ({ table, body: Buffer.from(lines.join('')), rows: lines.length }));
}
