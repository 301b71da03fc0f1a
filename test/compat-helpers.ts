/** Shared by the compat library tests: a server that takes sockets by 'connection', fed from a ringio listener. */
import { once } from 'node:events';
import { toDuplex, type SocketDuplex } from '@ringio/compat';
import { TcpListener } from '@ringio/net';
import { spawn } from '@ringio/runtime';

/**
 * Serves `server` (node:http, node:https, node:http2, or anything with emit('connection', socket)) on a
 * ringio listener at 127.0.0.1 on a free port: the whole setup of a server recipe. close() stops
 * accepting, destroys what is still open and waits until every Duplex has closed.
 */
export async function serve(server: { emit(ev: string, ...a: unknown[]): boolean }): Promise<{ port: number; close(): Promise<void> }> {
  const l = await TcpListener.bind('127.0.0.1:0');
  const duplexes = new Set<SocketDuplex>();
  server.emit('listening'); // node:http tracks its connections from here on (a no-op for others)
  const accepting = spawn(async () => {
    for await (const [stream] of l) {
      const d = toDuplex(stream);
      duplexes.add(d);
      d.on('close', () => duplexes.delete(d));
      server.emit('connection', d);
    }
  });
  return {
    port: l.localAddr.port,
    async close() {
      await l.close();
      await accepting;
      const open = [...duplexes];
      for (const d of open) d.destroy();
      await Promise.all(open.map((d) => (d.closed ? undefined : once(d, 'close'))));
    },
  };
}
