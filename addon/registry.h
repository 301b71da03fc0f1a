// The buffer registry: the data pointer and length of typed arrays that JS uses again and again, so
// a record can name one by id (AK_REG) instead of the plain path's element and typed-array lookups.
//
// JS owns the ids' lifetimes: it maps each live typed array to its id in a WeakMap, releases an id only
// after a FinalizationRegistry has seen the array collected, and checks right before each flush that
// no registered array in the batch was detached (packages/runtime/src/driver/registry.ts). The window
// is still checked at decoding against the length taken at registration (record.cc).
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringio {

class BufRegistry {
 public:
  // The registered array `id`: false when the id is not in use.
  bool Lookup(int32_t id, uint8_t** data, size_t* length) const {
    if (id < 0 || static_cast<size_t>(id) >= entries_.size()) return false;
    const Entry& e = entries_[static_cast<size_t>(id)];
    if (e.data == nullptr) return false;
    *data = e.data;
    *length = e.length;
    return true;
  }
  // An id >= 0, or -1 when the registry is full.
  int32_t Add(uint8_t* data, size_t length);
  void Release(int32_t id);
  size_t Live() const { return entries_.size() - free_.size(); }

 private:
  struct Entry {
    uint8_t* data = nullptr;  // nullptr: the id is free
    size_t length = 0;
  };
  // Enough for any sane number of live rented buffers; past it buffers simply go unregistered.
  static constexpr size_t kMax = 1 << 20;
  std::vector<Entry> entries_;
  std::vector<uint32_t> free_;
};

// Adds ringio_buf_register, ringio_buf_release and ringio_buf_registered, over `registry` (this
// environment's, owned by the addon instance).
void RegisterBuffers(Napi::Env env, Napi::Object exports, BufRegistry* registry);

}  // namespace ringio
