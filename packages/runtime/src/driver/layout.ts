/**
 * The record layout shared with the addon (addon/record.h). The addon exports the same numbers through
 * `ringio_layout()`; test/addon-layout.test.ts checks that both sides agree.
 *
 * Hot paths use the const enums below, which TypeScript writes as literals. V8 does not fold an imported
 * binding: every use of an imported `const` loads a module cell and checks it for TDZ (measured: 16
 * record stores cost 252 instructions through imports, 74 with literals or module-local consts).
 */

/** Record words (W_*) and the record size. */
export const enum Rec {
  OPCODE = 0,
  FD = 1,
  USER = 2,
  LEN = 3,
  OFF_LO = 4,
  OFF_HI = 5,
  ADDR_KIND = 6,
  ADDR_A = 7,
  ADDR_B = 8,
  OPFLAGS = 9,
  SQEFLAGS = 10,
  ADDR2_KIND = 11,
  ADDR2_A = 12,
  ADDR2_B = 13,
  LEGACY = 14,
  EXTRA = 15,
  WORDS = 16,
}

/** Address kinds (AK_*). */
export const enum Addr {
  NONE = 0,
  BUF = 1,
  IOVEC = 2,
  TIMESPEC = 3,
  U64 = 4,
  SOCKLEN = 5,
  BUF_END = 6,
  MSGHDR = 7,
  REG = 8,
}

/** Completion record words (C_*) and the completion record size. */
export const enum Cqe {
  USER = 0,
  RES = 1,
  FLAGS = 2,
  WORDS = 4,
}

export const W_OPCODE = Rec.OPCODE;
export const W_FD = Rec.FD;
export const W_USER = Rec.USER;
export const W_LEN = Rec.LEN;
export const W_OFF_LO = Rec.OFF_LO;
export const W_OFF_HI = Rec.OFF_HI;
export const W_ADDR_KIND = Rec.ADDR_KIND;
export const W_ADDR_A = Rec.ADDR_A;
export const W_ADDR_B = Rec.ADDR_B;
export const W_OPFLAGS = Rec.OPFLAGS;
export const W_SQEFLAGS = Rec.SQEFLAGS;
export const W_ADDR2_KIND = Rec.ADDR2_KIND;
export const W_ADDR2_A = Rec.ADDR2_A;
export const W_ADDR2_B = Rec.ADDR2_B;
export const W_LEGACY = Rec.LEGACY;
export const W_EXTRA = Rec.EXTRA;
export const REC_WORDS = Rec.WORDS;

export const AK_NONE = Addr.NONE;
export const AK_BUF = Addr.BUF;
export const AK_IOVEC = Addr.IOVEC;
export const AK_TIMESPEC = Addr.TIMESPEC;
export const AK_U64 = Addr.U64;
export const AK_SOCKLEN = Addr.SOCKLEN;
export const AK_BUF_END = Addr.BUF_END;
export const AK_MSGHDR = Addr.MSGHDR;
export const AK_REG = Addr.REG;

export const INTEREST_NONE = 0;
export const INTEREST_READABLE = 1;
export const INTEREST_WRITABLE = 2;
export const INTEREST_POOL = 3;

export const C_USER = Cqe.USER;
export const C_RES = Cqe.RES;
export const C_FLAGS = Cqe.FLAGS;
export const CQE_WORDS = Cqe.WORDS;

export const USER_IGNORE = -1;

export const S_ENTERS = 0;
export const S_COMPLETIONS = 1;
export const S_INFLIGHT = 2;
export const S_SUBMITTED = 3;
export const S_WAKEUPS = 4;
export const S_CALLBACKS = 5;
export const STAT_COUNT = 8;

/**
 * io_uring opcodes (include/uapi/linux/io_uring.h): exactly the ops the runtime submits. The epoll
 * backend runs the same codes as syscalls. The native op table (addon/ops.cc) has one row per entry
 * here, with how each is probed and run on epoll; test/addon-layout.test.ts checks that both agree.
 */
export const IORING_OP = {
  NOP: 0,
  READV: 1,
  WRITEV: 2,
  FSYNC: 3,
  POLL_ADD: 6,
  SENDMSG: 9,
  RECVMSG: 10,
  TIMEOUT: 11,
  ACCEPT: 13,
  ASYNC_CANCEL: 14,
  CONNECT: 16,
  FALLOCATE: 17,
  OPENAT: 18,
  CLOSE: 19,
  STATX: 21,
  READ: 22,
  WRITE: 23,
  SEND: 26,
  RECV: 27,
  SPLICE: 30,
  SHUTDOWN: 34,
  RENAMEAT: 35,
  UNLINKAT: 36,
  MKDIRAT: 37,
  SYMLINKAT: 38,
  SEND_ZC: 47,
  FTRUNCATE: 55,
  /** Not a kernel opcode: the addon's batch of READs under one slot (addon/read_many.cc). */
  READ_MANY: 240,
} as const;

/** sqe->flags: the kernel picks a buffer from the op's buffer group when data arrives (provided buffers). */
export const IOSQE_BUFFER_SELECT = 1 << 5;
/** cqe->flags: the completion used a provided buffer, whose id is in the upper 16 bits. */
export const IORING_CQE_F_BUFFER = 1 << 0;
/** sqe->ioprio of RECV: multishot receive (one submission, a completion per arrival; needs IOSQE_BUFFER_SELECT). */
export const IORING_RECV_MULTISHOT = 1 << 1;
/** cqe->flags: more completions follow for this op (multishot, zero-copy send). */
export const IORING_CQE_F_MORE = 1 << 1;
/** cqe->flags: a zero-copy send's notification that the kernel is done with the buffer. */
export const IORING_CQE_F_NOTIF = 1 << 3;
export const IORING_TIMEOUT_ABS = 1 << 0;
/** The fsync flag of IORING_OP_FSYNC for fdatasync. */
export const IORING_FSYNC_DATASYNC = 1 << 0;
