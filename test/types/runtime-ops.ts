// fd ops keep buffer types; a custom op with OpAble (default type argument), submit, cancelOp.
import {
  start,
  submit,
  cancelOp,
  pipe,
  read,
  write,
  close,
  eventfd,
  OpAble,
  IORING_OP,
  FdHandle,
  ReadOp,
  type SqeWriter,
  type Interest,
  type IoOptions,
} from '@ringio/runtime';

class EventfdRead extends OpAble<bigint> {
  readonly buf = new Uint8Array(8);
  constructor(readonly fd: number) {
    super();
  }
  get name(): string {
    return 'read';
  }
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.READ, this.fd, 8, -1).buf(this.buf);
  }
  override legacyInterest(): Interest {
    return { fd: this.fd, direction: 'readable' };
  }
  complete(res: number): bigint {
    this.check(res);
    return new DataView(this.buf.buffer).getBigUint64(0, true);
  }
}

// OpAble without a type argument: OpAble<unknown>.
class Untyped extends OpAble {
  get name(): string {
    return 'nop';
  }
  uringOp(sqe: SqeWriter): void {
    sqe.prep(IORING_OP.NOP, -1);
  }
  complete(res: number): number {
    return res;
  }
}

class PipeReader extends FdHandle {
  constructor(fd: number) {
    super(fd);
  }
  read<B extends Uint8Array>(buf: B): Promise<[number, B]> {
    return this.run(new ReadOp(this.openFd(buf), buf, 0, undefined, -1), undefined);
  }
}

await start(async () => {
  const [r, w] = pipe();
  const opts: IoOptions = { offset: 0, length: 5 };
  const [n, buf] = await write(w, Buffer.from('hello'), opts);
  const b: Buffer = buf;
  const [m, u8] = await read(r, new Uint8Array(5));
  const u: Uint8Array = u8;
  void [n, b, m, u];
  // @ts-expect-error a Uint8Array does not become a Buffer
  const wrong: Buffer = (await read(r, new Uint8Array(5)))[1];
  void wrong;
  await close(r);
  await close(w);

  const efd = eventfd();
  const op = new EventfdRead(efd);
  const pending: Promise<bigint> = submit(op);
  cancelOp(op);
  await pending.catch(() => 0n);
  const any: unknown = await submit(new Untyped());
  void any;
  const pr = new PipeReader(0);
  // @ts-expect-error run is protected
  pr.run;
});
