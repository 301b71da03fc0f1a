/**
 * The record layout shared with the addon (addon/record.h). The addon exports the same numbers through
 * `ringio_layout()`; test/addon-layout.test.ts checks that both sides agree.
 */
export const W_OPCODE = 0;
export const W_FD = 1;
export const W_USER = 2;
export const W_LEN = 3;
export const W_OFF_LO = 4;
export const W_OFF_HI = 5;
export const W_ADDR_KIND = 6;
export const W_ADDR_A = 7;
export const W_ADDR_B = 8;
export const W_OPFLAGS = 9;
export const W_SQEFLAGS = 10;
export const W_ADDR2_KIND = 11;
export const W_ADDR2_A = 12;
export const W_ADDR2_B = 13;
export const W_LEGACY = 14;
export const W_EXTRA = 15;
export const REC_WORDS = 16;

export const AK_NONE = 0;
export const AK_BUF = 1;
export const AK_IOVEC = 2;
export const AK_TIMESPEC = 3;
export const AK_U64 = 4;
export const AK_SOCKLEN = 5;
export const AK_BUF_END = 6;
export const AK_MSGHDR = 7;
export const AK_REG = 8;

export const INTEREST_NONE = 0;
export const INTEREST_READABLE = 1;
export const INTEREST_WRITABLE = 2;
export const INTEREST_POOL = 3;

export const C_USER = 0;
export const C_RES = 1;
export const C_FLAGS = 2;
export const CQE_WORDS = 4;

export const USER_IGNORE = -1;

export const S_ENTERS = 0;
export const S_COMPLETIONS = 1;
export const S_INFLIGHT = 2;
export const S_SUBMITTED = 3;
export const S_WAKEUPS = 4;
export const S_CALLBACKS = 5;
export const STAT_COUNT = 8;

/** io_uring opcodes (include/uapi/linux/io_uring.h). The epoll backend runs the same codes as syscalls. */
export const IORING_OP = {
  NOP: 0,
  READV: 1,
  WRITEV: 2,
  FSYNC: 3,
  POLL_ADD: 6,
  POLL_REMOVE: 7,
  SENDMSG: 9,
  RECVMSG: 10,
  TIMEOUT: 11,
  TIMEOUT_REMOVE: 12,
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
  SOCKET: 45,
  SEND_ZC: 47,
  FTRUNCATE: 55,
  SENDMSG_ZC: 48,
} as const;

export const IORING_CQE_F_MORE = 1 << 1;
export const IORING_CQE_F_NOTIF = 1 << 3;
export const IORING_TIMEOUT_ABS = 1 << 0;
export const IORING_FSYNC_DATASYNC = 1 << 0;
