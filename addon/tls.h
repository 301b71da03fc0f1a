// TLS over memory BIOs (tls.cc): the flat ringio_tls_* entry points. Node's bundled OpenSSL is used
// through the symbols the node binary exports to addons; docs/design/tls.md explains the design.
#pragma once
#include <napi.h>

#include <memory>

namespace ringio {

class TlsTable;

// Owns every SSL_CTX and SSL this environment made; its destructor (the addon's teardown, also at a
// worker's exit) frees what JS did not.
struct TlsState {
  TlsState();
  ~TlsState();
  std::unique_ptr<TlsTable> table;
};

// Adds ringio_tls_*.
void RegisterTls(Napi::Env env, Napi::Object exports, TlsState* state);

}  // namespace ringio
