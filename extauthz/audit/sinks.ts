/**
 * Where audit lines go: stdout (JSON lines for log shippers and SIEMs) and an append-only file
 * with size-based rotation. All I/O is asynchronous (libuv's thread pool), so a slow disk never
 * blocks the event loop; the file is fdatasync'ed after every batch.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, fstatSync } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ChainRef } from './record.js';

export interface LineSink {
  readonly name: string;
  /** Appends the text; resolves once it is durable for this sink (file: fdatasync). */
  write(text: string): Promise<void>;
  /** True when appending this many more bytes would pass the rotation size. */
  nearlyFull(bytes: number): boolean;
  /** Called after a successful write that ended with a checkpoint. */
  rotateIfFull(): Promise<void>;
  close(): Promise<void>;
}

export class StreamSink implements LineSink {
  readonly name = 'stdout';
  constructor(private readonly stream: NodeJS.WritableStream) {}

  write(text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.stream.write(text, (err) => (err ? reject(err) : resolve()));
    });
  }
  nearlyFull(): boolean {
    return false;
  }
  rotateIfFull(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Rotated files are PATH.000001, PATH.000002, …: a shell glob lists them in order. */
export function rotatedFiles(path: string): string[] {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && /^\d{6,}$/.test(f.slice(prefix.length)))
    .sort((a, b) => Number(a.slice(prefix.length)) - Number(b.slice(prefix.length)))
    .map((f) => join(dir, f));
}

export class FileSink implements LineSink {
  readonly name = 'file';
  private size = 0;

  private constructor(
    readonly path: string,
    private readonly maxBytes: number,
    private fh: FileHandle,
  ) {}

  static async open(path: string, maxBytes: number): Promise<FileSink> {
    await dropPartialLine(path);
    const fh = await open(path, 'a', 0o640);
    const sink = new FileSink(path, maxBytes, fh);
    sink.size = (await fh.stat()).size;
    return sink;
  }

  async write(text: string): Promise<void> {
    const buf = Buffer.from(text, 'utf8');
    try {
      let done = 0;
      while (done < buf.length) done += (await this.fh.write(buf, done, buf.length - done)).bytesWritten;
      await this.fh.datasync();
      this.size += buf.length;
    } catch (err) {
      // Cut a partial batch off, so the retry does not leave a broken line in the middle.
      await this.fh.truncate(this.size).catch(() => undefined);
      throw err;
    }
  }

  nearlyFull(bytes: number): boolean {
    return this.size + bytes >= this.maxBytes;
  }

  async rotateIfFull(): Promise<void> {
    if (this.size < this.maxBytes) return;
    await this.fh.close();
    const last = rotatedFiles(this.path).at(-1);
    const n = last ? Number(last.slice(last.lastIndexOf('.') + 1)) + 1 : 1;
    await rename(this.path, `${this.path}.${String(n).padStart(6, '0')}`);
    this.fh = await open(this.path, 'a', 0o640);
    this.size = 0;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/**
 * A crash can leave half a line at the end of the file. That record was never acknowledged (strict
 * mode answers only after fdatasync), so it is cut off before appending, rather than left to look
 * like a damaged line in the middle of the log.
 */
async function dropPartialLine(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const fh = await open(path, 'r+');
  try {
    const size = (await fh.stat()).size;
    if (size === 0) return;
    const len = Math.min(size, 1 << 20);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    if (buf[len - 1] === 0x0a) return;
    const cut = buf.lastIndexOf(0x0a);
    await fh.truncate(cut < 0 ? size - len : size - len + cut + 1);
  } finally {
    await fh.close();
  }
}

function tail(file: string, bytes: number): string {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, bytes);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function lastCheckpointIn(text: string): ChainRef | null {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const e = JSON.parse(lines[i] ?? '') as { type?: unknown; chain?: unknown; seq?: unknown; hash?: unknown };
      if (e.type === 'checkpoint' && typeof e.chain === 'string' && typeof e.seq === 'number' && typeof e.hash === 'string') return { chain: e.chain, seq: e.seq, hash: e.hash };
    } catch {
      // a partial or foreign line: keep looking further back
    }
  }
  return null;
}

/**
 * The last checkpoint this replica wrote before it restarted: the end of the current file, or of
 * the newest rotated one. Read once at start-up, never on the request path.
 */
export function findLastCheckpoint(path: string, window = 1 << 20): ChainRef | null {
  const candidates = [path, ...rotatedFiles(path).reverse()].filter((f) => existsSync(f));
  for (const file of candidates) {
    const ref = lastCheckpointIn(tail(file, window));
    if (ref) return ref;
  }
  return null;
}
