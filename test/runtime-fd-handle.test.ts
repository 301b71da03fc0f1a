/**
 * FdHandle's tracking of its ops in flight. The driver keeps each tracked op's owner and position by
 * slot (Driver.own / moveOwned), and FdHandle's list names slots: ops settling in any order must leave
 * exactly the others tracked, so close() cancels those and only those. Both drivers.
 */
import test from 'ava';
import { readSync, writeSync } from 'node:fs';
import { FdHandle, NopOp, OpAble, PollOp, POLLIN, TimeoutOp, closeSync, pipe, type SqeWriter } from '@ringio/runtime';
import { rejectionOf, rtTest, run } from './helpers.js';

class Handle extends FdHandle {
  go<T>(op: OpAble<T>, signal?: AbortSignal): Promise<T> {
    return this.run(op, signal);
  }

  bound<T>(op: OpAble<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => this.runBound(op, resolve, reject));
  }

  detached(op: OpAble<unknown>): void {
    this.runDetached(op);
  }
}

/** A poll that reports its final completion to a callback (for runDetached). */
class DetachedPoll extends PollOp {
  constructor(
    fd: number,
    private readonly done: (what: string) => void,
  ) {
    super(fd, POLLIN);
  }

  override complete(res: number): number {
    this.done(`complete ${res}`);
    return super.complete(res);
  }

  override cancelled(err: Error & { code?: string }): void {
    this.done(`cancelled ${err.code ?? err.name}`);
  }
}

rtTest('ops settling in any order leave exactly the others tracked: close() cancels those and only those', async (t) => {
  await run(async () => {
    const [r, w] = pipe();
    try {
      const h = new Handle(r);
      // Timeouts that settle in an order unlike their submission order, between polls that never fire:
      // every settle swaps the list's last entry into the settled op's place.
      const order: number[] = [];
      const delays = [30, 5, 50, 1, 20, 10, 40, 15];
      const timers = delays.map((ms, i) => h.go(new TimeoutOp(ms)).then(() => order.push(i)));
      const polls: Promise<number>[] = [];
      for (let i = 0; i < 6; i++) polls.push(h.go(new PollOp(r, POLLIN)));
      const aborter = new AbortController();
      const withSignal = h.go(new PollOp(r, POLLIN), aborter.signal);
      const viaBound = h.bound(new PollOp(r, POLLIN));
      const seen: string[] = [];
      h.detached(new DetachedPoll(r, (what) => seen.push(what)));
      const nops = Promise.all([h.go(new NopOp()), h.bound(new NopOp()), h.go(new NopOp())]);
      await Promise.all(timers);
      await nops;
      t.deepEqual(order, [3, 1, 5, 7, 4, 0, 6, 2], 'the timeouts settled by their delays');
      // One more settles out of order: the aborted poll, from the middle of the list.
      aborter.abort();
      t.is((await rejectionOf(t, withSignal)).name, 'AbortError');
      // 6 polls, the bound one and the detached one are left; close() cancels all 8 and waits for them.
      await h.close();
      for (const p of [...polls, viaBound]) t.is((await rejectionOf(t, p)).code, 'ERR_RINGIO_CLOSED');
      t.deepEqual(seen, ['cancelled ERR_RINGIO_CLOSED']);
      t.is(h.fd, -1);
    } finally {
      closeSync(w);
    }
  });
});

rtTest('a handle whose ops all settled closes at once; ops after close() reject ERR_RINGIO_CLOSED', async (t) => {
  await run(async () => {
    const [r, w] = pipe();
    try {
      const h = new Handle(r);
      for (let i = 0; i < 100; i++) await Promise.all([h.go(new NopOp()), h.bound(new NopOp()), h.go(new TimeoutOp(0))]);
      await h.close();
      t.is((await rejectionOf(t, h.go(new NopOp()))).code, 'ERR_RINGIO_CLOSED');
      t.throws(() => h.detached(new NopOp()), { code: 'ERR_RINGIO_CLOSED' } as never);
    } finally {
      closeSync(w);
    }
  });
});

rtTest('a refused op is not tracked: an already submitted op rejects, and close() does not wait for it', async (t) => {
  await run(async () => {
    const [r, w] = pipe();
    try {
      const h = new Handle(r);
      const op = new PollOp(r, POLLIN);
      const first = h.go(op);
      t.true((await rejectionOf(t, h.go(op))) instanceof TypeError);
      const bad = h.go(new NopOp(), 'not a signal' as unknown as AbortSignal);
      t.true((await rejectionOf(t, bad)) instanceof TypeError);
      await h.close();
      t.is((await rejectionOf(t, first)).code, 'ERR_RINGIO_CLOSED');
    } finally {
      closeSync(w);
    }
  });
});

test('OpAble carries no driver bookkeeping of its owner or promise (the driver keeps it by slot)', (t) => {
  class Probe extends OpAble<number> {
    get name(): string {
      return 'nop';
    }
    uringOp(sqe: SqeWriter): void {
      sqe.prep(0, -1);
    }
    complete(res: number): number {
      return res;
    }
  }
  const keys = Object.keys(new Probe());
  for (const k of ['_resolve', '_reject', '_signal', '_onAbort', '_owner', '_ownerIndex']) t.false(keys.includes(k), k);
});

rtTest('the first two ops in flight sit in the handle, the rest in its overflow list: settling across the two keeps close() exact', async (t) => {
  await run(async () => {
    const [r, w] = pipe();
    try {
      const h = new Handle(r);
      for (let round = 0; round < 3; round++) {
        // Positions 0 and 1 are the handle's own fields, 2 and up the overflow list (reused from round 2 on).
        const a = h.go(new PollOp(r, POLLIN)); // 0
        const short = h.go(new TimeoutOp(2)); // 1
        const b = h.go(new PollOp(r, POLLIN)); // 2
        const shorter = h.go(new NopOp()); // 3
        const c = h.go(new PollOp(r, POLLIN)); // 4
        // The nop settles first: the last (c, in the overflow list) takes position 3; then the timeout
        // settles: the last now (c again) moves from the overflow list into the handle's field.
        await shorter;
        await short;
        if (round < 2) {
          // A byte makes the pipe readable: the three polls complete and the handle is empty again.
          writeSync(w, Buffer.from('x'));
          for (const p of [a, b, c]) t.is(await p, POLLIN);
          readSync(r, Buffer.alloc(1));
          continue;
        }
        await h.close();
        for (const p of [a, b, c]) t.is((await rejectionOf(t, p)).code, 'ERR_RINGIO_CLOSED');
      }
      t.is(h.fd, -1);
    } finally {
      closeSync(w);
    }
  });
});
