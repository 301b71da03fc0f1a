// The addon's entry point: one instance per environment (the main thread and every worker), holding
// that environment's state, and the modules that add their flat ringio_* entry points to `exports`:
//
//   loop.cc      ringio_driver_*   the driver in libuv's loop (backends: uring_backend.cc, epoll_backend.cc)
//   decode.cc    ringio_layout, ringio_ops   record decoding; the wire format and the op table (ops.cc)
//   registry.cc  ringio_buf_*      the buffer registry
//   sys.cc       ringio_sys_*, ringio_net_*   plain syscalls
//   threads.cc   ringio_thread_*   doorbells, pinning, process-wide ids
//   tls.cc       ringio_tls_*      TLS over memory BIOs with Node's OpenSSL
#include <napi.h>

#include "decode.h"
#include "loop.h"
#include "registry.h"
#include "sys.h"
#include "threads.h"
#include "tls.h"

#define RINGIO_STR2(x) #x
#define RINGIO_STR(x) RINGIO_STR2(x)
#ifndef RINGIO_SOURCE_HASH
#define RINGIO_SOURCE_HASH unknown
#endif

namespace ringio {
namespace {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) : loop_(env, &registry_) {
    DefineAddon(exports, {InstanceMethod("ringio_source_hash", &Addon::SourceHash)});
    RegisterLoop(env, exports, &loop_);
    RegisterRecords(env, exports);
    RegisterBuffers(env, exports, &registry_);
    RegisterSys(env, exports, &loop_);
    RegisterThreads(env, exports);
    RegisterTls(env, exports, &tls_);
  }

 private:
  Napi::Value SourceHash(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), RINGIO_STR(RINGIO_SOURCE_HASH));
  }

  // Declared in this order so the loop (which decodes against the registry) goes first at teardown.
  BufRegistry registry_;
  Loop loop_;
  TlsState tls_;  // SSL objects this environment still holds are freed with it
};

}  // namespace
}  // namespace ringio

using RingioAddon = ringio::Addon;
NODE_API_ADDON(RingioAddon)
