// An in-memory queue of byte chunks with one producer (a protocol parser) and pull-based
// consumers (async iteration or read()). Used for every inbound byte stream in this module: SPDY
// streams, WebSocket channels and the backend's stdin. The consumer callback lets the owner
// account for consumed bytes (SPDY WINDOW_UPDATEs, resuming a paused socket).

export class ByteQueue implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;
  private ended = false;
  private waiters: Array<() => void> = [];
  private readonly onConsume: ((n: number) => void) | undefined;

  constructor(onConsume?: (n: number) => void) {
    this.onConsume = onConsume;
  }

  /** Bytes queued and not yet read. */
  get buffered(): number {
    return this.size;
  }

  /** True once end() was called (data may still be queued). */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Queues a chunk; returns false (and drops it) when the queue has ended. */
  push(chunk: Uint8Array): boolean {
    if (this.ended) return false;
    if (chunk.length === 0) return true;
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.wake();
    return true;
  }

  /** No more data: readers get what is queued, then the end. Idempotent. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.wake();
  }

  /** Drops queued data (counting it as consumed) and ends the queue. */
  discard(): void {
    const n = this.size;
    this.chunks.length = 0;
    this.size = 0;
    this.end();
    if (n > 0) this.onConsume?.(n);
  }

  /** The next chunk, or null at the end. */
  async read(): Promise<Uint8Array | null> {
    while (this.chunks.length === 0) {
      if (this.ended) return null;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const chunk = this.chunks.shift() as Uint8Array;
    this.size -= chunk.length;
    this.onConsume?.(chunk.length);
    return chunk;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = await this.read();
      if (chunk === null) return;
      yield chunk;
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
