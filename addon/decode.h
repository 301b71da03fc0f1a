// Record decoding: one submission record (record.h) and the batch's JS buffers become an Op whose
// pointers the backends may hand to the kernel. Also the entry points that describe the wire format
// and the op table to JS (ringio_layout, ringio_ops), checked by test/addon-layout.test.ts.
#pragma once
#include <napi.h>

#include <cstdint>

#include "backend.h"
#include "registry.h"

namespace ringio {

// Decodes the record at `w` into `op`. Every address is validated against the JS buffer it names
// (an index into `bufs`, or a registry id) before a pointer is taken; native storage an op needs
// (timespec, iovec array, msghdr, socklen) goes into its slot in `backend`. Returns 0, or -errno for
// a bad record, which then completes with that error instead of throwing (a batch is never half-taken).
int DecodeRecord(napi_env env, napi_value bufs, uint32_t nbufs, const int32_t* w, Backend* backend,
                 const BufRegistry& registry, Op* op);

// Adds ringio_layout and ringio_ops.
void RegisterRecords(Napi::Env env, Napi::Object exports);

}  // namespace ringio
