// The op table: every opcode the runtime submits, defined once for both backends (docs/design/layers.md
// has "how to add an op"). The io_uring backend probes the table's opcodes; the epoll backend runs
// each row's syscall, sends the rows that may block to its file pool, and applies each row's drained
// rule; both list `op:NAME` in their features for what they can run. test/addon-layout.test.ts checks
// the table against IORING_OP in packages/runtime/src/driver/layout.ts.
#pragma once

#include <cstdint>

#include "backend.h"

namespace ringio {

// IORING_OP_FTRUNCATE (kernel 6.9) postdates liburing 2.3, so its number is written here by hand.
constexpr uint8_t kOpFtruncate = 55;
// READ_MANY is the addon's own op, not a kernel opcode: a batch of READs at many positions under one
// slot and one completion (addon/read_many.cc). The number is past every kernel opcode.
constexpr uint8_t kOpReadMany = 240;

// How the io_uring backend treats a kernel without the opcode.
enum class Probe : uint8_t {
  kRequired,  // the runtime itself relies on it: without it, 'auto' falls back to epoll
  kOptional,  // listed as op:NAME when present; upper layers ask hasFeature('op:NAME') and degrade
  kNative,    // the addon's own op over required opcodes (READ_MANY over READ): not probed, always listed
};

// The syscall behind an op on the epoll backend, answered as io_uring would: a count (or fd), or
// -errno; -EAGAIN means "not ready, park until the fd's next edge". `engine` is the epoll backend when
// the op runs on the loop thread, and nullptr on a file pool thread (ops that need the engine, such as
// CONNECT's state or CLOSE's readiness cache, never go to the pool).
using RunFn = int (*)(const Op& op, Backend* engine);

struct OpSpec {
  uint8_t opcode;  // IORING_OP_*
  const char* name;
  Probe probe;
  // epoll: the syscall; nullptr when the engine implements the op itself (TIMEOUT with a timerfd,
  // ASYNC_CANCEL by unparking) or cannot run it (SEND_ZC: its op writes a plain SEND record there).
  RunFn run;
  bool engine_op;  // epoll: handled by the engine itself, not through `run` (and still listed)
  // epoll: the syscall may block on a disk (a regular file is always "ready"): it runs on the file pool.
  bool may_block;
  // epoll: a short result means the fd's direction is drained for now (libuv's partial-read rule):
  // the next op parks for the next edge instead of trying a syscall that would say EAGAIN.
  bool drained_when_short;
};

// The table, in opcode order, and its length.
extern const OpSpec kOps[];
extern const uint32_t kOpCount;

// The row for an opcode, or nullptr when the runtime does not use it.
const OpSpec* FindOp(uint8_t opcode);

// Runs `op`'s syscall (its row's RunFn); -EOPNOTSUPP for opcodes without one.
int RunOp(const Op& op, Backend* engine);

}  // namespace ringio
