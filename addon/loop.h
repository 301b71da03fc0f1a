// The loop binding: this environment's driver (a backend under one uv_poll_t in libuv's loop), the
// flat ringio_driver_* entry points, and the teardown that drains the kernel before memory goes away.
#pragma once
#include <napi.h>
#include <uv.h>

#include <memory>
#include <vector>

#include "backend.h"
#include "registry.h"

namespace ringio {

struct Driver;

class Loop {
 public:
  // Registers the environment's async cleanup hook (rule 3 in loop.cc).
  Loop(Napi::Env env, const BufRegistry* registry);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // The open driver's backend, or nullptr.
  Backend* backend() const;

  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Reap(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value PbufOpen(const Napi::CallbackInfo& info);
  Napi::Value PbufGrow(const Napi::CallbackInfo& info);

 private:
  static void AsyncCleanup(napi_async_cleanup_hook_handle handle, void* arg);
  static void OnHandleClosed(uv_handle_t* h);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void MaybeFinishCleanup();
  void ShutdownDriver(Driver& d);
  void Teardown();
  void Release(Driver* d);

  const BufRegistry* registry_;
  std::unique_ptr<Driver> driver_;
  std::vector<std::unique_ptr<Driver>> retired_;
  napi_async_cleanup_hook_handle cleanup_hook_ = nullptr;
  bool tearing_down_ = false;
  int pending_closes_ = 0;
};

// Adds ringio_driver_open, ringio_driver_submit, ringio_driver_reap, ringio_driver_close and ringio_pbuf_open over `loop`.
void RegisterLoop(Napi::Env env, Napi::Object exports, Loop* loop);

}  // namespace ringio
