/** Newline-delimited JSON over a stream: the upgrade protocol's framing. */
import type { SocketStream } from '@ringio/net';

export class LineReader {
  #rest = '';
  #buf = Buffer.allocUnsafe(65536);

  constructor(readonly stream: SocketStream) {}

  /** Seeds bytes that arrived another way (with the fds, through recvmsg). */
  push(text: string): void {
    this.#rest += text;
  }

  /** The next JSON line, or undefined at end of stream. Lines over 1 MiB are refused. */
  async next(signal?: AbortSignal): Promise<Record<string, unknown> | undefined> {
    for (;;) {
      const nl = this.#rest.indexOf('\n');
      if (nl >= 0) {
        const line = this.#rest.slice(0, nl);
        this.#rest = this.#rest.slice(nl + 1);
        const v = JSON.parse(line) as unknown;
        if (v === null || typeof v !== 'object') throw new TypeError('expected a JSON object per line');
        return v as Record<string, unknown>;
      }
      if (this.#rest.length > 1 << 20) throw new RangeError('line too long');
      const [n, b] = await this.stream.read(this.#buf, { signal });
      this.#buf = b;
      if (n === 0) return undefined;
      this.#rest += b.toString('utf8', 0, n);
    }
  }
}

export async function writeLine(stream: SocketStream, msg: unknown): Promise<void> {
  await stream.writeAll(Buffer.from(JSON.stringify(msg) + '\n'));
}
