// Record decoding (decode.h).
#include "decode.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "bytes.h"
#include "ops.h"
#include "read_many.h"
#include "record.h"

namespace ringio {
namespace {

// AK_REG: registry id `a`, window offset `b`, `len` bytes checked. Returns 0 or -EFAULT. Inline: the
// common case (a send or recv into a registered array), which DecodeRecord takes without ResolveAddr.
inline int RegAddr(const BufRegistry& registry, int32_t a, int32_t b, uint32_t len, uint64_t* out) {
  uint8_t* data;
  size_t length;
  if (!registry.Lookup(a, &data, &length)) return -EFAULT;
  const size_t off = static_cast<uint32_t>(b);
  if (off > length || static_cast<size_t>(len) > length - off) return -EFAULT;
  // SAFETY: the id names a typed array that is alive (JS's WeakMap yields ids of live arrays only,
  // and an id is released only after its array was collected) and that JS saw attached just before
  // this call, with no JS run since; the JS op keeps it referenced until its final completion. An
  // off-heap backing store does not move, so the pointer taken at registration still holds.
  *out = reinterpret_cast<uint64_t>(data + off);
  return 0;
}

// Resolves one address word group of a record into a pointer or value. Returns 0 or -errno.
int ResolveAddr(napi_env env, napi_value bufs, uint32_t nbufs, Backend* backend, const BufRegistry& registry, int kind,
                int32_t a, int32_t b, uint32_t len, int32_t user, uint64_t* out) {
  switch (kind) {
    case AK_NONE:
      *out = 0;
      return 0;
    case AK_U64:
      *out = static_cast<uint64_t>(static_cast<uint32_t>(a)) | (static_cast<uint64_t>(static_cast<uint32_t>(b)) << 32);
      return 0;
    case AK_BUF:
    case AK_BUF_END: {
      uint8_t* data;
      size_t length;
      if (!BufferAt(env, bufs, nbufs, a, &data, &length)) return -EFAULT;
      // The window offset is an unsigned 32-bit word: windows may start anywhere in a 4 GiB buffer.
      const size_t off = static_cast<uint32_t>(b);
      if (off > length) return -EFAULT;
      if (kind == AK_BUF && static_cast<size_t>(len) > length - off) return -EFAULT;
      // SAFETY: the JS op keeps this typed array referenced until its final completion.
      *out = reinterpret_cast<uint64_t>(data + off);
      return 0;
    }
    case AK_REG:
      return RegAddr(registry, a, b, len, out);
    case AK_IOVEC: {
      if (user < 0 || len == 0 || len > 1024) return -EINVAL;
      Slot& s = backend->SlotFor(user);
      s.iov.resize(len);
      for (uint32_t i = 0; i < len; i++) {
        uint8_t* data;
        size_t length;
        if (!BufferAt(env, bufs, nbufs, a + static_cast<int32_t>(i), &data, &length)) return -EFAULT;
        s.iov[i].iov_base = data;
        s.iov[i].iov_len = length;
      }
      // SAFETY: the iovec array lives in the op's slot, which is not reused before its completion.
      *out = reinterpret_cast<uint64_t>(s.iov.data());
      return 0;
    }
    case AK_TIMESPEC: {
      if (user < 0 || a < 0 || b < 0 || b >= 1000000000) return -EINVAL;
      Slot& s = backend->SlotFor(user);
      s.ts.tv_sec = a;
      s.ts.tv_nsec = b;
      *out = reinterpret_cast<uint64_t>(&s.ts);
      return 0;
    }
    case AK_MSGHDR: {
      if (user < 0) return -EINVAL;
      Slot& s = backend->SlotFor(user);
      uint8_t* data;
      size_t length;
      if (!BufferAt(env, bufs, nbufs, a, &data, &length)) return -EFAULT;
      s.iov.resize(1);
      s.iov[0].iov_base = data;
      s.iov[0].iov_len = length;
      memset(&s.msg, 0, sizeof s.msg);
      s.msg.msg_iov = s.iov.data();
      s.msg.msg_iovlen = 1;
      if (b >= 0) {
        uint8_t* name;
        size_t namelen;
        if (!BufferAt(env, bufs, nbufs, b, &name, &namelen)) return -EFAULT;
        s.msg.msg_name = name;
        s.msg.msg_namelen = static_cast<socklen_t>(namelen);
      }
      // SAFETY: the msghdr, its iovec and both buffers live until the op's final completion.
      *out = reinterpret_cast<uint64_t>(&s.msg);
      return 0;
    }
    case AK_SOCKLEN: {
      if (user < 0) return -EINVAL;
      Slot& s = backend->SlotFor(user);
      s.socklen = static_cast<socklen_t>(a);
      *out = reinterpret_cast<uint64_t>(&s.socklen);
      return 0;
    }
    default:
      return -EINVAL;
  }
}

Napi::Value Layout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const std::pair<const char*, int> entries[] = {
      {"W_OPCODE", W_OPCODE}, {"W_FD", W_FD}, {"W_USER", W_USER}, {"W_LEN", W_LEN}, {"W_OFF_LO", W_OFF_LO},
      {"W_OFF_HI", W_OFF_HI}, {"W_ADDR_KIND", W_ADDR_KIND}, {"W_ADDR_A", W_ADDR_A}, {"W_ADDR_B", W_ADDR_B},
      {"W_OPFLAGS", W_OPFLAGS}, {"W_SQEFLAGS", W_SQEFLAGS}, {"W_ADDR2_KIND", W_ADDR2_KIND},
      {"W_ADDR2_A", W_ADDR2_A}, {"W_ADDR2_B", W_ADDR2_B}, {"W_LEGACY", W_LEGACY}, {"W_EXTRA", W_EXTRA},
      {"REC_WORDS", REC_WORDS}, {"AK_NONE", AK_NONE}, {"AK_BUF", AK_BUF}, {"AK_IOVEC", AK_IOVEC},
      {"AK_TIMESPEC", AK_TIMESPEC}, {"AK_U64", AK_U64}, {"AK_SOCKLEN", AK_SOCKLEN}, {"AK_BUF_END", AK_BUF_END}, {"AK_MSGHDR", AK_MSGHDR}, {"AK_REG", AK_REG},
      {"INTEREST_NONE", INTEREST_NONE}, {"INTEREST_READABLE", INTEREST_READABLE},
      {"INTEREST_WRITABLE", INTEREST_WRITABLE}, {"INTEREST_POOL", INTEREST_POOL}, {"C_USER", C_USER}, {"C_RES", C_RES}, {"C_FLAGS", C_FLAGS},
      {"CQE_WORDS", CQE_WORDS}, {"USER_IGNORE", USER_IGNORE}, {"S_ENTERS", S_ENTERS},
      {"S_COMPLETIONS", S_COMPLETIONS}, {"S_INFLIGHT", S_INFLIGHT}, {"S_SUBMITTED", S_SUBMITTED},
      {"S_WAKEUPS", S_WAKEUPS}, {"S_CALLBACKS", S_CALLBACKS}, {"STAT_COUNT", STAT_COUNT},
  };
  for (const auto& e : entries) o.Set(e.first, Napi::Number::New(env, e.second));
  return o;
}

// ringio_ops() -> the op table (ops.h), for the layout test and docs: one row per opcode.
Napi::Value Ops(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array rows = Napi::Array::New(env, kOpCount);
  for (uint32_t i = 0; i < kOpCount; i++) {
    const OpSpec& op = kOps[i];
    Napi::Object r = Napi::Object::New(env);
    r.Set("opcode", Napi::Number::New(env, op.opcode));
    r.Set("name", Napi::String::New(env, op.name));
    r.Set("required", Napi::Boolean::New(env, op.probe == Probe::kRequired));
    r.Set("epoll", Napi::Boolean::New(env, op.run != nullptr || op.engine_op));
    r.Set("pool", Napi::Boolean::New(env, op.may_block));
    r.Set("drainedWhenShort", Napi::Boolean::New(env, op.drained_when_short));
    rows.Set(i, r);
  }
  return rows;
}

}  // namespace

int DecodeRecord(napi_env env, napi_value bufs, uint32_t nbufs, const int32_t* w, Backend* backend,
                 const BufRegistry& registry, Op* op) {
  op->opcode = static_cast<uint8_t>(w[W_OPCODE]);
  op->fd = w[W_FD];
  op->user = w[W_USER];
  op->len = static_cast<uint32_t>(w[W_LEN]);
  op->off = static_cast<uint64_t>(static_cast<uint32_t>(w[W_OFF_LO])) |
            (static_cast<uint64_t>(static_cast<uint32_t>(w[W_OFF_HI])) << 32);
  op->op_flags = static_cast<uint32_t>(w[W_OPFLAGS]);
  op->sqe_flags = static_cast<uint8_t>(w[W_SQEFLAGS] & 0xff);
  op->ioprio = static_cast<uint16_t>(static_cast<uint32_t>(w[W_SQEFLAGS]) >> 16);
  op->legacy_op = static_cast<uint8_t>(w[W_LEGACY] & 0xff);
  op->interest = static_cast<uint8_t>((w[W_LEGACY] >> 8) & 3);
  op->interest_fd = static_cast<int32_t>(static_cast<uint32_t>(w[W_LEGACY]) >> 10);
  op->extra = w[W_EXTRA];
  if (op->opcode == kOpReadMany) return DecodeReadMany(env, bufs, nbufs, w, backend, registry, op);
  // A registered array (the common case) without ResolveAddr's call, which passes eleven arguments.
  int err = w[W_ADDR_KIND] == AK_REG
                ? RegAddr(registry, w[W_ADDR_A], w[W_ADDR_B], op->len, &op->addr)
                : ResolveAddr(env, bufs, nbufs, backend, registry, w[W_ADDR_KIND], w[W_ADDR_A], w[W_ADDR_B], op->len,
                              op->user, &op->addr);
  if (err == 0 && w[W_ADDR2_KIND] != AK_NONE) {
    op->has_addr2 = true;
    err = ResolveAddr(env, bufs, nbufs, backend, registry, w[W_ADDR2_KIND], w[W_ADDR2_A], w[W_ADDR2_B], 0, op->user,
                      &op->addr2);
  }
  return err;
}

void RegisterRecords(Napi::Env env, Napi::Object exports) {
  exports.Set("ringio_layout", Napi::Function::New(env, Layout, "ringio_layout"));
  exports.Set("ringio_ops", Napi::Function::New(env, Ops, "ringio_ops"));
}

}  // namespace ringio
