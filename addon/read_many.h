// READ_MANY: many positional reads of one file under one slot, one record and one completion
// (docs/design/driver.md, "A native batch op"). Both backends share the decoding and the epoll runner.
#pragma once

#include <napi.h>

#include <cstdint>

#include "backend.h"
#include "registry.h"

namespace ringio {

// The plan's int32 words per entry (an Int32Array): the position's low and high 32 bits, the buffer (a
// registry id >= 0, the batch's buffer index i as -(i + 1), or kPlanDetached) and the byte count (the
// buffer used whole).
enum PlanWord : uint32_t { P_POS_LO = 0, P_POS_HI = 1, P_BUF = 2, P_LEN = 3, kPlanWords = 4 };
constexpr int32_t kPlanDetached = INT32_MIN;
// A sane bound for one batch: the plan is checked and resolved in one native call.
constexpr uint32_t kReadManyMax = 1u << 20;
// The record's op-flags word: with kReadManyEach (File.readAt's lanes), io_uring reports every entry but
// the batch's last as it arrives, as a completion flagged IORING_CQE_F_MORE whose flags carry the entry's
// index from bit kEntryShift up; the last entry's result comes with the batch's one final completion (in
// the results array, as every entry's). The epoll backend ignores the flag (one pool job, one answer).
constexpr uint32_t kReadManyEach = 1;
constexpr uint32_t kEntryShift = 8;

// Resolves a READ_MANY record into its slot's BatchState (op->addr points at it). W_LEN is the entry
// count; addr is the plan (AK_BUF_END, a batch buffer index), addr2 the Int32Array of results. Every
// result starts as -ECANCELED (an entry a cancel kept from running), entries with a bad buffer or
// position as -EFAULT / -EINVAL (done at once). Returns 0 or -errno for a bad record.
int DecodeReadMany(napi_env env, napi_value bufs, uint32_t nbufs, const int32_t* w, Backend* backend,
                   const BufRegistry& registry, Op* op);

// epoll, on a file pool thread: preads every entry not yet done, in order, until the batch is
// cancelled. Returns the entry count (per-entry results are in the results array).
int RunReadMany(const Op& op, Backend* engine);

}  // namespace ringio
