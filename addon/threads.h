// Cross-thread doorbells, CPU pinning and process-wide ids (threads.cc).
#pragma once
#include <napi.h>

namespace ringio {
// Adds the flat ringio_thread_* entry points to `exports` for this environment.
void RegisterThreads(Napi::Env env, Napi::Object exports);
}  // namespace ringio
