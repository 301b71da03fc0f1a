// The buffer registry's entry points (registry.h).
#include "registry.h"

#include "bytes.h"

namespace ringio {

int32_t BufRegistry::Add(uint8_t* data, size_t length) {
  uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    if (entries_.size() >= kMax) return -1;
    id = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
  }
  entries_[id].data = data;
  entries_[id].length = length;
  return static_cast<int32_t>(id);
}

void BufRegistry::Release(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= entries_.size() || entries_[static_cast<size_t>(id)].data == nullptr) return;
  entries_[static_cast<size_t>(id)] = Entry{};
  free_.push_back(static_cast<uint32_t>(id));
}

namespace {

BufRegistry* Self(const Napi::CallbackInfo& info) { return static_cast<BufRegistry*>(info.Data()); }

// ringio_buf_register(view) -> an id >= 0, or -1 when the view cannot be registered (not a byte
// array, empty, or the registry is full). Takes the view's data pointer once; taking it also moves a
// small typed array's bytes off V8's heap for good, so the pointer stays put while the view lives.
Napi::Value Register(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  uint8_t* data;
  size_t length;
  if (info.Length() < 1 || !ByteView(env, info[0], &data, &length) || length == 0 || data == nullptr) {
    return Napi::Value(env, Int(env, -1));
  }
  return Napi::Value(env, Int(env, Self(info)->Add(data, length)));
}

// ringio_buf_release(id): JS saw the view collected; the id may be handed out again.
Napi::Value Release(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int32_t id = -1;
  if (info.Length() >= 1 && napi_get_value_int32(env, info[0], &id) == napi_ok) Self(info)->Release(id);
  return Napi::Value(env, Undefined(env));
}

// ringio_buf_registered() -> ids in use (for tests and stats).
Napi::Value Registered(const Napi::CallbackInfo& info) {
  return Napi::Value(info.Env(), Uint(info.Env(), static_cast<uint32_t>(Self(info)->Live())));
}

}  // namespace

void RegisterBuffers(Napi::Env env, Napi::Object exports, BufRegistry* registry) {
  const std::pair<const char*, Napi::Function::Callback> fns[] = {
      {"ringio_buf_register", Register},
      {"ringio_buf_release", Release},
      {"ringio_buf_registered", Registered},
  };
  for (const auto& f : fns) exports.Set(f.first, Napi::Function::New(env, f.second, f.first, registry));
}

}  // namespace ringio
