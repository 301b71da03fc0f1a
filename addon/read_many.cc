// READ_MANY (read_many.h).
#include "read_many.h"

#include <errno.h>
#include <unistd.h>


#include "bytes.h"
#include "record.h"

namespace ringio {
namespace {

// An entry's buffer: its data pointer and length, or false.
bool EntryBuffer(napi_env env, napi_value bufs, uint32_t nbufs, const BufRegistry& registry, int32_t ref, uint8_t** data,
                 size_t* length) {
  if (ref >= 0) return registry.Lookup(ref, data, length);
  if (ref == kPlanDetached) return false;
  return BufferAt(env, bufs, nbufs, -ref - 1, data, length);
}

}  // namespace

int DecodeReadMany(napi_env env, napi_value bufs, uint32_t nbufs, const int32_t* w, Backend* backend,
                   const BufRegistry& registry, Op* op) {
  const uint32_t n = op->len;
  if (op->user < 0 || n == 0 || n > kReadManyMax) return -EINVAL;
  if (w[W_ADDR_KIND] != AK_BUF_END || w[W_ADDR2_KIND] != AK_BUF_END) return -EINVAL;
  uint8_t* plan_bytes;
  size_t plan_len;
  uint8_t* res_bytes;
  size_t res_len;
  if (!BufferAt(env, bufs, nbufs, w[W_ADDR_A], &plan_bytes, &plan_len)) return -EFAULT;
  if (!BufferAt(env, bufs, nbufs, w[W_ADDR2_A], &res_bytes, &res_len)) return -EFAULT;
  if (plan_len < static_cast<size_t>(n) * kPlanWords * sizeof(int32_t) || res_len < static_cast<size_t>(n) * sizeof(int32_t) ||
      reinterpret_cast<uintptr_t>(plan_bytes) % alignof(int32_t) != 0 ||
      reinterpret_cast<uintptr_t>(res_bytes) % alignof(int32_t) != 0) {
    return -EFAULT;
  }
  const int32_t* plan = reinterpret_cast<const int32_t*>(plan_bytes);
  Slot& s = backend->SlotFor(op->user);
  if (!s.batch) s.batch = std::make_shared<BatchState>();
  BatchState& b = *s.batch;
  b.entries.resize(n);
  b.done.assign(n, 0);
  // SAFETY: the results array is referenced by the batch's JS op until the batch's completion, as the
  // entries' buffers are; nothing writes into it after that completion.
  b.results = reinterpret_cast<int32_t*>(res_bytes);
  b.left = 0;
  b.active = true;
  b.each = (op->op_flags & kReadManyEach) != 0;
  b.cancel.store(false, std::memory_order_relaxed);
  for (uint32_t i = 0; i < n; i++) {
    const int32_t* e = plan + static_cast<size_t>(i) * kPlanWords;
    const int32_t hi = e[P_POS_HI];
    const int32_t len = e[P_LEN];
    uint8_t* data;
    size_t length;
    int32_t r = -ECANCELED;
    if (hi < 0 || len < 0 || len > 0x7ffff000) {
      r = -EINVAL;
    } else if (!EntryBuffer(env, bufs, nbufs, registry, e[P_BUF], &data, &length) || static_cast<size_t>(len) > length) {
      r = -EFAULT;
    } else {
      const uint64_t pos = (static_cast<uint64_t>(hi) << 32) | static_cast<uint32_t>(e[P_POS_LO]);
      // SAFETY: a buffer the JS op keeps referenced until the batch's completion (a registry id names a
      // live array that the driver saw attached just before this call: driver/registry.ts).
      b.entries[i] = {reinterpret_cast<uint64_t>(data), static_cast<uint32_t>(len), pos};
    }
    b.results[i] = r;
    if (r != -ECANCELED) b.done[i] = 1;
  }
  op->addr = reinterpret_cast<uint64_t>(&b);
  return 0;
}

int RunReadMany(const Op& op, Backend*) {
  // SAFETY: the BatchState lives in the op's Slot, which is not reused (nor its batch touched by the
  // loop thread, except for `cancel`) before this job's completion is taken.
  BatchState& b = *reinterpret_cast<BatchState*>(op.addr);
  const uint32_t n = static_cast<uint32_t>(b.entries.size());
  for (uint32_t i = 0; i < n; i++) {
    if (b.done[i]) continue;
    if (b.cancel.load(std::memory_order_relaxed)) break;  // the rest keep -ECANCELED
    const BatchEntry& e = b.entries[i];
    ssize_t r;
    do {
      r = pread(op.fd, reinterpret_cast<void*>(e.addr), e.len, static_cast<off_t>(e.off));
    } while (r < 0 && errno == EINTR);
    b.results[i] = r < 0 ? -errno : static_cast<int32_t>(r);
    b.done[i] = 1;
  }
  return static_cast<int>(n);
}

}  // namespace ringio
