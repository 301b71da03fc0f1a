// Errors thrown to JS from the addon, shaped like Node's: a `code`, and for system errors `errno`
// (negative) and `syscall`. Shared by every entry point file.
#pragma once
#include <napi.h>

#include <cstring>
#include <string>

namespace ringio {

inline Napi::Error CodedError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

inline Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  const char* name = strerrorname_np(err);
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + " " + (name ? name : "E?") + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, name ? name : "E?"));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

}  // namespace ringio
