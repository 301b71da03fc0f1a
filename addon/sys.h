// Plain synchronous syscalls for JS (sys.cc): the flat ringio_sys_* and ringio_net_* entry points.
#pragma once
#include <napi.h>

#include "loop.h"

namespace ringio {
// Adds ringio_sys_* and ringio_net_*; ringio_sys_close tells `loop`'s backend that an fd is going away.
void RegisterSys(Napi::Env env, Napi::Object exports, Loop* loop);
}  // namespace ringio
