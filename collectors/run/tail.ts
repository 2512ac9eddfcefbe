/**
 * The end of a stream kept in bounded memory: the last `maxLines` lines, at most `maxBytes` bytes of UTF-8.
 * A command that writes gigabytes to stderr costs the watcher a few kilobytes.
 */
import { StringDecoder } from 'node:string_decoder';

export class StreamTail {
  private readonly decoder = new StringDecoder('utf8');
  private text = '';

  constructor(
    readonly maxLines = 50,
    readonly maxBytes = 8 * 1024,
  ) {}

  push(chunk: Buffer | string): void {
    this.text += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    // Every UTF-16 unit is at least one byte of UTF-8: the last maxBytes units hold all value() can return.
    if (this.text.length > 2 * this.maxBytes) this.text = this.text.slice(-this.maxBytes);
  }

  /** The tail: whole lines where they fit, the first one possibly cut at its start. */
  value(): string {
    let lines = this.text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    lines = lines.slice(-this.maxLines);
    let out = lines.join('\n');
    const bytes = Buffer.from(out, 'utf8');
    if (bytes.length > this.maxBytes) out = bytes.subarray(bytes.length - this.maxBytes).toString('utf8').replace(/^\uFFFD+/, '');
    return out;
  }
}
