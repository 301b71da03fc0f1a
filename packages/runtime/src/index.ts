/**
 * @ringio/runtime: a per-thread io_uring (or epoll) runtime for Node.js.
 */
export { start, type StartOptions, type RuntimeContext } from './start.js';
export { spawn, yieldNow, stats, hasFeature, driverName, submit, cancelOp, currentRuntime, configureRecvPool } from './context.js';
export { RecvLease, RecvPool, type RecvPoolOptions, type RecvPoolStats } from './recv-pool.js';
export { sleep, timeout, interval, type MissedTick, type TimeoutWork, type IntervalOptions } from './time.js';
export type { Runtime, RuntimeStats, Feature, OptionalOp } from './runtime.js';
export { JoinHandle } from './task.js';
export { channel, Channel, type SendOptions, type RecvOptions } from './threads/channel.js';
export { oneshot, Oneshot } from './threads/oneshot.js';
export { watch, Watch } from './threads/watch.js';
export { spawnBlocking, type BlockingOptions } from './threads/blocking.js';
export type { Cloned } from './threads/cloned.js';
export { shareable, fromShareable, type Shareable } from './threads/share.js';
export type { ModuleSpec } from './threads/group.js';
export { cancelError, OpAble, OpFlags, OpState, SqeWriter } from './op.js';
export { checkBuffer, checkBufs, checkFd, checkPosition, checkRange, checkSignal } from './validate.js';
export type { Interest, Direction, OpOwner, SignalOptions } from './op.js';
export { NopOp } from './ops/nop.js';
export { TimeoutOp } from './ops/timeout.js';
export { PollOp, POLLIN, POLLOUT, POLLPRI, POLLERR, POLLHUP, POLLRDHUP } from './ops/poll.js';
export { ReadOp } from './ops/read.js';
export { WriteOp } from './ops/write.js';
export { CloseOp } from './ops/close.js';
export { CancelOp } from './ops/cancel.js';
export { sys } from './sys.js';
export { tlsNative, TLS_HANDSHAKE_DONE, TLS_PEER_CLOSED, TLS_MORE, TLS_MAX_WINDOW, type TlsResult, type NativeTlsContextOptions } from './tls-native.js';
export { FdHandle } from './fd-handle.js';
export { LiveList, LiveNode } from './live-list.js';
export { nop, read, write, poll, close, pipe, eventfd, closeSync, type IoOptions } from './fd.js';
export {
  RingioError,
  ClosedError,
  TimeoutError,
  RuntimeError,
  IoError,
  ThreadError,
  HttpError,
  TlsError,
  ServiceError,
  ProxyError,
  SystemError,
  AbortError,
  ErrnoError,
  abortError,
  errnoError,
  ringioError,
  ringioErrorNoStack,
  isErrnoError,
  isRingioError,
  ERRNO,
  type RingioErrorCode,
  type ErrorFields,
} from './errors.js';
export {
  IORING_OP,
  IORING_CQE_F_MORE,
  IORING_CQE_F_NOTIF,
  IORING_FSYNC_DATASYNC,
  IORING_CQE_F_BUFFER,
  IORING_RECV_MULTISHOT,
  IOSQE_BUFFER_SELECT,
} from './driver/layout.js';
export { ECANCELED, ETIME } from './errors.js';
