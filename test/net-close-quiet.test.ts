/**
 * A stream's own close() cancels its pooled read without making an error nobody reads: the driver tells a
 * detached op its cancellation by reason (OpAble.cancelledBy), a PooledReadSink with `cancelled` gets it
 * without an error (one without still gets fail() with ERR_RINGIO_CLOSED), and a consumer started without
 * a promise (SocketStream._readLeasesTo, compat's Duplex) learns of the close by a flag. Errors that
 * someone reads are still made: a runtime shutdown fails the consumer with ERR_RINGIO_CLOSED. Every test
 * runs on the driver under test (RINGIO_DRIVER), and `npm test` runs both.
 */
import { TcpStream, RecvSelectOp, type PooledReadSink } from '@ringio/net';
import { cancelError, currentRuntime, sleep, stats, type OpAble, type RecvLease } from '@ringio/runtime';
import { countNoStackErrors, guard, rtTest, run, tcpPairs } from './helpers.js';

type Done = (err: unknown, closed: boolean) => void;
interface LeasesTo {
  _readLeasesTo(handler: (lease: RecvLease) => unknown, done: Done): void;
  _submitPooled(op: OpAble<unknown>): void;
}
const internal = (s: TcpStream): LeasesTo => s as unknown as LeasesTo;

/** One pooled read through readLease, so that the runtime's receive pool has buffers (io_uring's ring). */
async function warmPool(c: TcpStream, s: TcpStream): Promise<void> {
  await c.writeAll(Buffer.from('x'));
  const lease = await s.readLease();
  lease!.release();
  await (s as unknown as { _stopLeases(): Promise<RecvLease[]> })._stopLeases();
}

rtTest('a pooled read cancelled by its stream close(): a sink with cancelled() gets the reason, no error', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const calls: string[] = [];
    const sink: PooledReadSink = {
      data: (id) => currentRuntime().recvPool.giveUnleased(id),
      end: () => calls.push('end'),
      fail: (_op, e) => calls.push(`fail ${(e as { code?: string }).code}`),
      cancelled: (op, reason) => calls.push(`cancelled ${reason} ${op instanceof RecvSelectOp}`),
    };
    await warmPool(c, s);
    internal(s)._submitPooled(new RecvSelectOp(s.fd, sink));
    await sleep(20);
    await guard(s.close(), 5000, 'close with a pooled read in flight');
    t.deepEqual(calls, ['cancelled closed true']);
    await c.close();
  });
});

rtTest('a pooled read cancelled by close(): a sink without cancelled() still gets fail() with ERR_RINGIO_CLOSED', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const errs: unknown[] = [];
    const sink: PooledReadSink = {
      data: (id) => currentRuntime().recvPool.giveUnleased(id),
      end: () => errs.push('end'),
      fail: (_op, e) => errs.push(e),
    };
    await warmPool(c, s);
    internal(s)._submitPooled(new RecvSelectOp(s.fd, sink));
    await sleep(20);
    await guard(s.close(), 5000, 'close with a pooled read in flight');
    t.is(errs.length, 1);
    t.is((errs[0] as { code?: string }).code, 'ERR_RINGIO_CLOSED');
    t.is((errs[0] as Error).name, 'ClosedError');
    await c.close();
  });
});

rtTest('cancelError: AbortError for abort, ERR_RINGIO_CLOSED with buf and no stack frames for closed', (t) => {
  const buf = new Uint8Array(4);
  const a = cancelError('abort', buf) as Error & { code?: string; buf?: unknown };
  t.is(a.name, 'AbortError');
  t.is(a.code, 'ABORT_ERR');
  t.is(a.buf, buf);
  const c = cancelError('closed', buf) as Error & { code?: string; buf?: unknown };
  t.is(c.code, 'ERR_RINGIO_CLOSED');
  t.is(c.buf, buf);
  t.false(/\n\s+at /.test(String(c.stack)), 'no stack frames');
});

rtTest('_readLeasesTo: data to the handler, done(null, false) at end of stream, no promise', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const got: Buffer[] = [];
    const ended = new Promise<[unknown, boolean]>((resolve) => {
      internal(s)._readLeasesTo(
        (lease) => {
          got.push(lease.copy());
        },
        (err, closed) => resolve([err, closed]),
      );
    });
    await c.writeAll(Buffer.from('hello'));
    await c.shutdown();
    t.deepEqual(await guard(ended, 5000, 'the end of stream'), [null, false]);
    t.is(Buffer.concat(got).toString(), 'hello');
    t.is(stats().recvPool.leased, 0);
    await Promise.all([c.close(), s.close()]);
  });
});

rtTest('closing streams whose consumer waits (_readLeasesTo): done(null, true) and not one error made', async (t) => {
  await run(async () => {
    const pairs = await tcpPairs(8);
    const done: Array<[unknown, boolean]> = [];
    for (const [, s] of pairs) internal(s)._readLeasesTo(() => {}, (err, closed) => done.push([err, closed]));
    await sleep(20); // the reads are in the kernel
    const made = await countNoStackErrors(async () => {
      await guard(Promise.all(pairs.map(([, s]) => s.close())), 5000, 'the closes');
    });
    t.is(made, 0, 'no ERR_RINGIO_CLOSED was made for the consumers or the cancelled reads');
    t.is(done.length, pairs.length);
    for (const d of done) t.deepEqual(d, [null, true]);
    await Promise.all(pairs.map(([c]) => c.close()));
  });
});

rtTest('readLeases (with its promise) still rejects ERR_RINGIO_CLOSED when its stream closes', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    const consuming = s.readLeases(() => {});
    await sleep(20);
    await s.close();
    const e = await consuming.then(
      () => undefined,
      (err: unknown) => err as { code?: string },
    );
    t.is(e?.code, 'ERR_RINGIO_CLOSED');
    await c.close();
  });
});

rtTest('_readLeasesTo while another reader reads: throws TypeError; once closed: ERR_RINGIO_CLOSED', async (t) => {
  await run(async () => {
    const [[c, s]] = await tcpPairs(1);
    internal(s)._readLeasesTo(() => {}, () => {});
    t.throws(() => internal(s)._readLeasesTo(() => {}, () => {}), { instanceOf: TypeError });
    await s.close();
    t.throws(() => internal(s)._readLeasesTo(() => {}, () => {}), { code: 'ERR_RINGIO_CLOSED' } as never);
    await c.close();
  });
});
