// Byte views of JS typed arrays, shared by the entry points that take buffers (record decoding, the
// buffer registry, socket set-up).
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace ringio {

// A byte typed array's data and length; false for anything else (napi_get_typedarray_info refuses
// what is not a typed array). A detached array has no data and a length of 0. Raw Node-API: used on
// hot paths that must never throw.
inline bool ByteView(napi_env env, napi_value v, uint8_t** data, size_t* length) {
  napi_typedarray_type type;
  size_t count;
  void* p;
  napi_value ab;
  size_t byte_offset;
  if (napi_get_typedarray_info(env, v, &type, &count, &p, &ab, &byte_offset) != napi_ok) return false;
  if (type != napi_uint8_array && type != napi_int8_array && type != napi_uint8_clamped_array) return false;
  *data = static_cast<uint8_t*>(p);
  *length = count;
  return p != nullptr || count == 0;
}

// Element `index` of the batch's buffer array `bufs` (length nbufs) as bytes; false when out of range
// or not a byte view.
inline bool BufferAt(napi_env env, napi_value bufs, uint32_t nbufs, int32_t index, uint8_t** data, size_t* length) {
  if (index < 0 || static_cast<uint32_t>(index) >= nbufs) return false;
  napi_value v;
  if (napi_get_element(env, bufs, static_cast<uint32_t>(index), &v) != napi_ok) return false;
  return ByteView(env, v, data, length);
}

// Any typed array's bytes, for cold paths (socket addresses, alignment).
inline bool Bytes(const Napi::Value& v, uint8_t** data, size_t* len) {
  if (!v.IsTypedArray()) return false;
  auto a = v.As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ByteLength();
  return true;
}

// Small Node-API value makers that never throw (see loop.cc: calls may fail while a worker terminates).
inline napi_value Undefined(napi_env env) {
  napi_value u = nullptr;
  napi_get_undefined(env, &u);
  return u;
}

inline napi_value Int(napi_env env, int32_t v) {
  napi_value r = nullptr;
  if (napi_create_int32(env, v, &r) != napi_ok) return Undefined(env);
  return r;
}

inline napi_value Uint(napi_env env, uint32_t v) {
  napi_value r = nullptr;
  if (napi_create_uint32(env, v, &r) != napi_ok) return Undefined(env);
  return r;
}

}  // namespace ringio
