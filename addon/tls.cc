// TLS over memory BIOs: the flat ringio_tls_* entry points (docs/design/tls.md).
//
// An SSL object here never touches a socket. Its read BIO is fed the ciphertext a ring read brought
// (ringio_tls_read copies it in, runs the handshake or decrypts everything it can into the caller's
// buffer: one call per read), and its write BIO collects the ciphertext that ringio_tls_write makes from
// the caller's plaintext, copied out into the caller's buffer for the ring's send. The kernel only ever
// sees JS buffers rented by ops; OpenSSL's memory is never handed to it (invariant 1).
//
// Ids: contexts and sessions live in this environment's TlsTable and are named to JS by small integer
// ids; a session holds its context (and through it the SNI table) until it is freed. ~TlsState frees
// whatever JS did not (a worker that exits mid-connection), so nothing outlives the environment.
//
// Results of read, write, take and shutdown are packed into one number so that a call crosses the
// boundary once: flags + 8 * n + 2^28 * min(pending, 2^24 - 1), where n is the bytes put in the
// caller's buffer, pending the ciphertext still waiting in the write BIO, and flags kHandshakeDone,
// kPeerClosed, kMore (plaintext may remain: call again with no input). -1 is an error, described by
// ringio_tls_error.
#include "tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bytes.h"

namespace ringio {

namespace {

constexpr double kHandshakeDone = 1;
constexpr double kPeerClosed = 2;
constexpr double kMore = 4;
constexpr size_t kMaxOut = (1u << 25) - 1;
constexpr size_t kMaxPending = (1u << 24) - 1;

struct Ctx {
  SSL_CTX* ctx = nullptr;
  bool server = false;
  std::vector<uint8_t> alpn;  // wire format, in the server's order of preference
  // SNI: exact names (lower case) and wildcard suffixes (".example.com" for "*.example.com").
  std::unordered_map<std::string, std::shared_ptr<Ctx>> names;
  std::vector<std::pair<std::string, std::shared_ptr<Ctx>>> wildcards;
  ~Ctx() {
    if (ctx != nullptr) SSL_CTX_free(ctx);
  }
};

struct Session {
  SSL* ssl = nullptr;
  BIO* wbio = nullptr;  // owned by ssl
  BIO* rbio = nullptr;  // owned by ssl
  std::shared_ptr<Ctx> ctx;
  // The last failure, for ringio_tls_error.
  unsigned long err = 0;
  long verify = X509_V_OK;
  std::string detail;
  ~Session() {
    if (ssl != nullptr) SSL_free(ssl);  // before ctx's reference goes
  }
};

}  // namespace

class TlsTable {
 public:
  std::vector<std::shared_ptr<Ctx>> ctxs;
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<uint32_t> free_ctxs;
  std::vector<uint32_t> free_sessions;
  size_t live_ctxs = 0;
  size_t live_sessions = 0;

  uint32_t AddCtx(std::shared_ptr<Ctx> c) {
    live_ctxs++;
    if (!free_ctxs.empty()) {
      uint32_t id = free_ctxs.back();
      free_ctxs.pop_back();
      ctxs[id] = std::move(c);
      return id;
    }
    ctxs.push_back(std::move(c));
    return static_cast<uint32_t>(ctxs.size() - 1);
  }
  uint32_t AddSession(std::unique_ptr<Session> s) {
    live_sessions++;
    if (!free_sessions.empty()) {
      uint32_t id = free_sessions.back();
      free_sessions.pop_back();
      sessions[id] = std::move(s);
      return id;
    }
    sessions.push_back(std::move(s));
    return static_cast<uint32_t>(sessions.size() - 1);
  }
};

TlsState::TlsState() : table(new TlsTable()) {}
TlsState::~TlsState() = default;

namespace {

TlsTable* Table(const Napi::CallbackInfo& info) { return static_cast<TlsState*>(info.Data())->table.get(); }

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// An OpenSSL failure as a Node-style error: code ERR_OSSL_<REASON> (as Node names them), the message
// "what: reason". Clears the thread's error queue, which Node's own crypto shares.
Napi::Error OsslError(Napi::Env env, const std::string& what) {
  unsigned long e = ERR_peek_last_error();
  const char* reason = e != 0 ? ERR_reason_error_string(e) : nullptr;
  std::string r = reason != nullptr ? reason : "unknown error";
  ERR_clear_error();
  Napi::Error err = Napi::Error::New(env, what + ": " + r);
  std::string code = "ERR_OSSL_";
  for (char c : r) code += c == ' ' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  err.Set("code", Napi::String::New(env, code));
  return err;
}

Ctx* GetCtx(const Napi::CallbackInfo& info, int arg) {
  TlsTable* t = Table(info);
  if (!info[arg].IsNumber()) throw Napi::TypeError::New(info.Env(), "a TLS context id must be a number");
  uint32_t id = info[arg].As<Napi::Number>().Uint32Value();
  if (id >= t->ctxs.size() || !t->ctxs[id]) throw Napi::Error::New(info.Env(), "the TLS context is freed");
  return t->ctxs[id].get();
}

Session* GetSession(const Napi::CallbackInfo& info) {
  TlsTable* t = Table(info);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id >= t->sessions.size() || !t->sessions[id]) return nullptr;
  return t->sessions[id].get();
}

std::string OptString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

bool OptBytes(const Napi::Object& o, const char* key, uint8_t** data, size_t* len) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!Bytes(v, data, len)) throw Napi::TypeError::New(o.Env(), std::string("options.") + key + " must be a Uint8Array");
  return true;
}

int AlpnSelect(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen, void* arg) {
  Ctx* c = static_cast<Ctx*>(arg);
  unsigned char* o = nullptr;
  if (SSL_select_next_proto(&o, outlen, c->alpn.data(), static_cast<unsigned int>(c->alpn.size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

// SNI: switches the connection to the context whose name matches (exact first, then the longest
// wildcard); an unknown name keeps the default certificate, as nginx does.
int ServerName(SSL* ssl, int*, void* arg) {
  Ctx* c = static_cast<Ctx*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  std::string n = Lower(name);
  auto it = c->names.find(n);
  Ctx* pick = nullptr;
  if (it != c->names.end()) {
    pick = it->second.get();
  } else {
    size_t best = 0;
    for (auto& w : c->wildcards) {
      // "*.example.com" matches exactly one more label: a.example.com, not a.b.example.com.
      if (n.size() > w.first.size() && w.first.size() > best && n.compare(n.size() - w.first.size(), w.first.size(), w.first) == 0 &&
          n.find('.') == n.size() - w.first.size()) {
        pick = w.second.get();
        best = w.first.size();
      }
    }
  }
  if (pick != nullptr && pick != c) SSL_set_SSL_CTX(ssl, pick->ctx);
  return SSL_TLSEXT_ERR_OK;
}

void LoadCerts(Napi::Env env, SSL_CTX* ctx, uint8_t* data, size_t len, const std::string& passphrase, uint8_t* kdata, size_t klen) {
  BIO* bio = BIO_new_mem_buf(data, static_cast<int>(len));
  X509* leaf = PEM_read_bio_X509_AUX(bio, nullptr, nullptr, nullptr);
  if (leaf == nullptr) {
    BIO_free(bio);
    throw OsslError(env, "options.cert");
  }
  int ok = SSL_CTX_use_certificate(ctx, leaf);
  X509_free(leaf);
  if (ok != 1) {
    BIO_free(bio);
    throw OsslError(env, "options.cert");
  }
  SSL_CTX_clear_chain_certs(ctx);
  for (;;) {
    X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (ca == nullptr) break;
    if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
      X509_free(ca);
      BIO_free(bio);
      throw OsslError(env, "options.cert (chain)");
    }
  }
  ERR_clear_error();  // the end of the PEM stream
  BIO_free(bio);
  bio = BIO_new_mem_buf(kdata, static_cast<int>(klen));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, const_cast<char*>(passphrase.c_str()));
  BIO_free(bio);
  if (key == nullptr) throw OsslError(env, "options.key");
  ok = SSL_CTX_use_PrivateKey(ctx, key);
  EVP_PKEY_free(key);
  if (ok != 1) throw OsslError(env, "options.key");
  if (SSL_CTX_check_private_key(ctx) != 1) throw OsslError(env, "options.key does not match options.cert");
}

// ringio_tls_ctx_new({ server, cert?, key?, passphrase?, ca?, verify, alpn?, minVersion? }) -> id
Napi::Value CtxNew(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  ERR_clear_error();
  auto c = std::make_shared<Ctx>();
  c->server = o.Get("server").ToBoolean();
  c->ctx = SSL_CTX_new(c->server ? TLS_server_method() : TLS_client_method());
  if (c->ctx == nullptr) throw OsslError(env, "SSL_CTX_new");
  SSL_CTX_set_options(c->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  std::string min = OptString(o, "minVersion");
  SSL_CTX_set_min_proto_version(c->ctx, min == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  uint8_t *cert, *key;
  size_t cert_len, key_len;
  bool has_cert = OptBytes(o, "cert", &cert, &cert_len);
  bool has_key = OptBytes(o, "key", &key, &key_len);
  if (has_cert != has_key) throw Napi::TypeError::New(env, "options.cert and options.key go together");
  if (has_cert) LoadCerts(env, c->ctx, cert, cert_len, OptString(o, "passphrase"), key, key_len);
  else if (c->server) throw Napi::TypeError::New(env, "a server context needs options.cert and options.key");
  uint8_t* ca;
  size_t ca_len;
  if (OptBytes(o, "ca", &ca, &ca_len)) {
    X509_STORE* store = SSL_CTX_get_cert_store(c->ctx);
    BIO* bio = BIO_new_mem_buf(ca, static_cast<int>(ca_len));
    int count = 0;
    for (;;) {
      X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      if (x == nullptr) break;
      X509_STORE_add_cert(store, x);  // a duplicate is not an error worth failing for
      X509_free(x);
      count++;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (count == 0) throw Napi::TypeError::New(env, "options.ca holds no PEM certificate");
  }
  bool verify = o.Get("verify").ToBoolean();
  if (!c->server) SSL_CTX_set_verify(c->ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  uint8_t* alpn;
  size_t alpn_len;
  if (OptBytes(o, "alpn", &alpn, &alpn_len) && alpn_len > 0) {
    c->alpn.assign(alpn, alpn + alpn_len);
    if (c->server) {
      SSL_CTX_set_alpn_select_cb(c->ctx, AlpnSelect, c.get());
    } else if (SSL_CTX_set_alpn_protos(c->ctx, alpn, static_cast<unsigned int>(alpn_len)) != 0) {
      throw OsslError(env, "options.ALPNProtocols");
    }
  }
  if (c->server) {
    SSL_CTX_set_tlsext_servername_callback(c->ctx, ServerName);
    SSL_CTX_set_tlsext_servername_arg(c->ctx, c.get());
    static const unsigned char kSid[] = "ringio";
    SSL_CTX_set_session_id_context(c->ctx, kSid, sizeof kSid - 1);
  }
  return Napi::Number::New(env, Table(info)->AddCtx(std::move(c)));
}

// ringio_tls_ctx_sni(parent, child, name): connections to `parent` that ask for `name` (or a name under
// "*.suffix") get `child`'s certificate.
Napi::Value CtxSni(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TlsTable* t = Table(info);
  Ctx* parent = GetCtx(info, 0);
  GetCtx(info, 1);
  std::shared_ptr<Ctx> child = t->ctxs[info[1].As<Napi::Number>().Uint32Value()];
  if (!parent->server || !child->server) throw Napi::TypeError::New(env, "SNI names need server contexts");
  if (!info[2].IsString()) throw Napi::TypeError::New(env, "name must be a string");
  std::string name = Lower(info[2].As<Napi::String>().Utf8Value());
  if (name.size() > 2 && name[0] == '*' && name[1] == '.') parent->wildcards.emplace_back(name.substr(1), child);
  else parent->names[name] = child;
  return env.Undefined();
}

Napi::Value CtxFree(const Napi::CallbackInfo& info) {
  TlsTable* t = Table(info);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id < t->ctxs.size() && t->ctxs[id]) {
    t->ctxs[id].reset();  // sessions still holding it keep it alive
    t->free_ctxs.push_back(id);
    t->live_ctxs--;
  }
  return info.Env().Undefined();
}

// ringio_tls_new(ctx, servername?, checkHost?) -> session id. Client sessions send `servername` (SNI,
// unless it is an IP address) and verify the peer's certificate against `checkHost` (a DNS name or an
// IP address).
Napi::Value New(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TlsTable* t = Table(info);
  GetCtx(info, 0);
  std::shared_ptr<Ctx> c = t->ctxs[info[0].As<Napi::Number>().Uint32Value()];
  ERR_clear_error();
  auto s = std::make_unique<Session>();
  s->ssl = SSL_new(c->ctx);
  if (s->ssl == nullptr) throw OsslError(env, "SSL_new");
  s->ctx = c;
  s->rbio = BIO_new(BIO_s_mem());
  s->wbio = BIO_new(BIO_s_mem());
  if (s->rbio == nullptr || s->wbio == nullptr) {
    if (s->rbio != nullptr) BIO_free(s->rbio);
    if (s->wbio != nullptr) BIO_free(s->wbio);
    throw OsslError(env, "BIO_new");
  }
  // An empty memory BIO reports "retry" rather than end of file.
  BIO_set_mem_eof_return(s->rbio, -1);
  SSL_set_bio(s->ssl, s->rbio, s->wbio);
  if (c->server) {
    SSL_set_accept_state(s->ssl);
  } else {
    SSL_set_connect_state(s->ssl);
    if (info[1].IsString()) {
      std::string name = info[1].As<Napi::String>().Utf8Value();
      unsigned char ip[16];
      bool is_ip = inet_pton(AF_INET, name.c_str(), ip) == 1 || inet_pton(AF_INET6, name.c_str(), ip) == 1;
      if (!is_ip && !name.empty()) SSL_set_tlsext_host_name(s->ssl, name.c_str());
    }
    if (info[2].IsString()) {
      std::string host = info[2].As<Napi::String>().Utf8Value();
      unsigned char ip[16];
      X509_VERIFY_PARAM* param = SSL_get0_param(s->ssl);
      if (inet_pton(AF_INET, host.c_str(), ip) == 1 || inet_pton(AF_INET6, host.c_str(), ip) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
      }
    }
  }
  return Napi::Number::New(env, t->AddSession(std::move(s)));
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  TlsTable* t = Table(info);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id < t->sessions.size() && t->sessions[id]) {
    t->sessions[id].reset();
    t->free_sessions.push_back(id);
    t->live_sessions--;
  }
  return info.Env().Undefined();
}

// Clears OpenSSL's thread-local error queue (node:crypto's too) if anything is in it: SSL_get_error
// reads a stale entry as a failure of the call at hand. ERR_clear_error on its own walks all 16 slots
// of the queue (~770 instructions, callgrind); peeking first costs ~150 when it is empty, as it is on
// every hot call (each call clears what its failure left).
inline void ClearErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

double Pack(Session* s, size_t n, double flags) {
  size_t pending = BIO_ctrl_pending(s->wbio);
  if (SSL_is_init_finished(s->ssl)) flags += kHandshakeDone;
  return flags + 8.0 * static_cast<double>(n) + 268435456.0 * static_cast<double>(std::min(pending, kMaxPending));
}

// Records a failed SSL call; true when it was a real failure (not "needs more input").
bool Failed(Session* s, int r, bool* closed) {
  int e = SSL_get_error(s->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return false;
  if (e == SSL_ERROR_ZERO_RETURN) {
    *closed = true;
    return false;
  }
  s->err = ERR_peek_last_error();
  s->verify = SSL_get_verify_result(s->ssl);
  s->detail = e == SSL_ERROR_SYSCALL ? "unexpected end of the TLS stream" : "";
  ERR_clear_error();
  return true;
}

// The hot entry points (read, write, take) are raw Node-API callbacks: node-addon-api's CallbackInfo
// asks napi_get_cb_info twice and allocates the argument array on the heap past 6 arguments (read and
// write take 7): ~270 instructions a call (callgrind). Here one napi_get_cb_info fills a stack array
// (missing arguments come as undefined). Failures to describe a window throw; OpenSSL's return -1.
struct HotArgs {
  napi_value argv[8];
  Session* session = nullptr;
};

// Fills `a` and finds the session named by argv[0]; false (with a JS exception pending) when the
// session is freed or the id is not a number.
bool GetHot(napi_env env, napi_callback_info cbinfo, HotArgs* a) {
  size_t argc = 8;
  void* data = nullptr;
  if (napi_get_cb_info(env, cbinfo, &argc, a->argv, nullptr, &data) != napi_ok) return false;
  TlsTable* t = static_cast<TlsState*>(data)->table.get();
  uint32_t id;
  if (napi_get_value_uint32(env, a->argv[0], &id) != napi_ok || id >= t->sessions.size() || !t->sessions[id]) {
    napi_throw_error(env, nullptr, "the TLS session is freed");
    return false;
  }
  a->session = t->sessions[id].get();
  return true;
}

// The window (array, offset, length) at argv[arg..arg+2]; false when they do not describe one.
bool Window(napi_env env, const napi_value* argv, int arg, uint8_t** p, size_t* len) {
  uint8_t* data;
  size_t total;
  uint32_t off, n;
  if (!ByteView(env, argv[arg], &data, &total)) return false;
  if (napi_get_value_uint32(env, argv[arg + 1], &off) != napi_ok || napi_get_value_uint32(env, argv[arg + 2], &n) != napi_ok) return false;
  if (off > total || n > total - off) return false;
  *p = data + off;
  *len = n;
  return true;
}

// Read's and write's windows: the input at argv[1..3] (optional for read: undefined or null), the
// output at argv[4..6]; false with a RangeError pending when either is bad. Clears stale errors.
bool InOut(napi_env env, const napi_value* argv, bool optional_in, uint8_t** in, size_t* in_len, uint8_t** out, size_t* out_len) {
  napi_valuetype in_type = napi_object;
  if (optional_in) napi_typeof(env, argv[1], &in_type);  // one Node-API call (IsUndefined + IsNull made two)
  if ((in_type != napi_undefined && in_type != napi_null && !Window(env, argv, 1, in, in_len)) || *in_len > INT_MAX) {
    napi_throw_range_error(env, nullptr, "bad input window");
    return false;
  }
  if (!Window(env, argv, 4, out, out_len) || *out_len > kMaxOut) {
    napi_throw_range_error(env, nullptr, "bad output window");
    return false;
  }
  ClearErrors();
  return true;
}

napi_value Result(napi_env env, double v) {
  napi_value r = nullptr;
  napi_create_double(env, v, &r);
  return r;
}

// ringio_tls_read(id, cin?, cinOff, cinLen, out, outOff, outLen) -> packed: feeds the ciphertext in,
// advances the handshake, and decrypts into out until it is full or the input is used up.
napi_value Read(napi_env env, napi_callback_info cbinfo) {
  HotArgs a;
  if (!GetHot(env, cbinfo, &a)) return nullptr;
  Session* s = a.session;
  uint8_t *in = nullptr, *out;
  size_t in_len = 0, out_len;
  if (!InOut(env, a.argv, true, &in, &in_len, &out, &out_len)) return nullptr;
  if (in_len > 0 && BIO_write(s->rbio, in, static_cast<int>(in_len)) != static_cast<int>(in_len)) {
    s->err = ERR_peek_last_error();
    s->verify = X509_V_OK;
    s->detail = "BIO_write failed";
    ERR_clear_error();
    return Result(env, -1);
  }
  bool closed = false;
  if (!SSL_is_init_finished(s->ssl)) {
    int r = SSL_do_handshake(s->ssl);
    if (r != 1) {
      if (Failed(s, r, &closed)) return Result(env, -1);
      return Result(env, Pack(s, 0, closed ? kPeerClosed : 0));
    }
  }
  size_t n = 0;
  while (n < out_len) {
    size_t got = 0;
    int r = SSL_read_ex(s->ssl, out + n, out_len - n, &got);
    if (r != 1) {
      if (Failed(s, r, &closed)) return Result(env, -1);
      break;
    }
    n += got;
    // Nothing left to decrypt (no record bytes in the session, no ciphertext in the read BIO): another
    // SSL_read_ex could only answer "want read", a failed call and SSL_get_error (~600 instructions).
    if (SSL_has_pending(s->ssl) == 0 && BIO_ctrl_pending(s->rbio) == 0) break;
  }
  double flags = closed ? kPeerClosed : 0;
  if (n == out_len && (SSL_pending(s->ssl) > 0 || BIO_ctrl_pending(s->rbio) > 0)) flags += kMore;
  return Result(env, Pack(s, n, flags));
}

// ringio_tls_write(id, plain, off, len, out, outOff, outLen) -> packed: encrypts the whole window (the
// write BIO grows as needed) and moves as much ciphertext as fits into out; take() gets the rest.
napi_value Write(napi_env env, napi_callback_info cbinfo) {
  HotArgs a;
  if (!GetHot(env, cbinfo, &a)) return nullptr;
  Session* s = a.session;
  uint8_t *in = nullptr, *out;
  size_t in_len = 0, out_len;
  if (!InOut(env, a.argv, false, &in, &in_len, &out, &out_len)) return nullptr;
  size_t done = 0;
  bool closed = false;
  while (done < in_len) {
    size_t w = 0;
    int r = SSL_write_ex(s->ssl, in + done, in_len - done, &w);
    if (r != 1) {
      s->err = 0;
      s->detail.clear();
      Failed(s, r, &closed);
      if (s->err == 0 && s->detail.empty()) s->detail = "the TLS session cannot send (handshake unfinished or closed)";
      return Result(env, -1);
    }
    done += w;
  }
  int got = BIO_read(s->wbio, out, static_cast<int>(out_len));
  return Result(env, Pack(s, got > 0 ? static_cast<size_t>(got) : 0, 0));
}

// ringio_tls_take(id, out, off, len) -> packed: ciphertext waiting in the write BIO (handshake
// messages, alerts, the rest of a write).
napi_value Take(napi_env env, napi_callback_info cbinfo) {
  HotArgs a;
  if (!GetHot(env, cbinfo, &a)) return nullptr;
  Session* s = a.session;
  uint8_t* out;
  size_t out_len;
  if (!Window(env, a.argv, 1, &out, &out_len) || out_len > kMaxOut) {
    napi_throw_range_error(env, nullptr, "bad output window");
    return nullptr;
  }
  int got = out_len > 0 ? BIO_read(s->wbio, out, static_cast<int>(out_len)) : 0;
  return Result(env, Pack(s, got > 0 ? static_cast<size_t>(got) : 0, 0));
}

// ringio_tls_shutdown(id) -> packed: queues close_notify (take() it and send it).
Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Session* s = GetSession(info);
  if (s == nullptr) throw Napi::Error::New(env, "the TLS session is freed");
  ERR_clear_error();
  if (SSL_is_init_finished(s->ssl)) SSL_shutdown(s->ssl);
  ERR_clear_error();
  return Napi::Number::New(env, Pack(s, 0, 0));
}

const char* VerifyCode(long v) {
  switch (v) {
#define RINGIO_X509(name) \
  case X509_V_ERR_##name: \
    return #name;
    RINGIO_X509(UNABLE_TO_GET_ISSUER_CERT)
    RINGIO_X509(UNABLE_TO_GET_CRL)
    RINGIO_X509(UNABLE_TO_DECRYPT_CERT_SIGNATURE)
    RINGIO_X509(UNABLE_TO_DECRYPT_CRL_SIGNATURE)
    RINGIO_X509(UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY)
    RINGIO_X509(CERT_SIGNATURE_FAILURE)
    RINGIO_X509(CRL_SIGNATURE_FAILURE)
    RINGIO_X509(CERT_NOT_YET_VALID)
    RINGIO_X509(CERT_HAS_EXPIRED)
    RINGIO_X509(CRL_NOT_YET_VALID)
    RINGIO_X509(CRL_HAS_EXPIRED)
    RINGIO_X509(ERROR_IN_CERT_NOT_BEFORE_FIELD)
    RINGIO_X509(ERROR_IN_CERT_NOT_AFTER_FIELD)
    RINGIO_X509(OUT_OF_MEM)
    RINGIO_X509(DEPTH_ZERO_SELF_SIGNED_CERT)
    RINGIO_X509(SELF_SIGNED_CERT_IN_CHAIN)
    RINGIO_X509(UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
    RINGIO_X509(UNABLE_TO_VERIFY_LEAF_SIGNATURE)
    RINGIO_X509(CERT_CHAIN_TOO_LONG)
    RINGIO_X509(CERT_REVOKED)
    RINGIO_X509(INVALID_CA)
    RINGIO_X509(PATH_LENGTH_EXCEEDED)
    RINGIO_X509(INVALID_PURPOSE)
    RINGIO_X509(CERT_UNTRUSTED)
    RINGIO_X509(CERT_REJECTED)
    RINGIO_X509(HOSTNAME_MISMATCH)
    RINGIO_X509(IP_ADDRESS_MISMATCH)
#undef RINGIO_X509
    default:
      return "UNSPECIFIED";
  }
}

// ringio_tls_error(id) -> { reason, library, verifyCode?, verifyMessage? }: the last failure.
Napi::Value Error(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Session* s = GetSession(info);
  Napi::Object o = Napi::Object::New(env);
  if (s == nullptr) return o;
  const char* reason = s->err != 0 ? ERR_reason_error_string(s->err) : nullptr;
  const char* lib = s->err != 0 ? ERR_lib_error_string(s->err) : nullptr;
  o.Set("reason", Napi::String::New(env, reason != nullptr ? reason : (s->detail.empty() ? "TLS failure" : s->detail.c_str())));
  o.Set("library", Napi::String::New(env, lib != nullptr ? lib : "SSL routines"));
  if (s->verify != X509_V_OK) {
    o.Set("verifyCode", Napi::String::New(env, VerifyCode(s->verify)));
    o.Set("verifyMessage", Napi::String::New(env, X509_verify_cert_error_string(s->verify)));
  }
  return o;
}

// ringio_tls_info(id) -> { protocol, cipher, alpn, servername, verifyCode }
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Session* s = GetSession(info);
  Napi::Object o = Napi::Object::New(env);
  if (s == nullptr) return o;
  o.Set("protocol", Napi::String::New(env, SSL_get_version(s->ssl)));
  const char* cipher = SSL_get_cipher_name(s->ssl);
  o.Set("cipher", Napi::String::New(env, cipher != nullptr ? cipher : ""));
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(s->ssl, &alpn, &alpn_len);
  o.Set("alpn", alpn_len > 0 ? Napi::String::New(env, reinterpret_cast<const char*>(alpn), alpn_len) : env.Null());
  const char* sn = SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name);
  o.Set("servername", sn != nullptr ? Napi::String::New(env, sn) : env.Null());
  long v = SSL_get_verify_result(s->ssl);
  X509* peer = SSL_get1_peer_certificate(s->ssl);
  if (peer != nullptr) X509_free(peer);
  o.Set("verifyCode", v == X509_V_OK && peer != nullptr ? env.Null() : Napi::String::New(env, peer == nullptr ? "NO_PEER_CERTIFICATE" : VerifyCode(v)));
  return o;
}

// ringio_tls_counts() -> [contexts, sessions] alive in this environment (leak checks).
Napi::Value Counts(const Napi::CallbackInfo& info) {
  TlsTable* t = Table(info);
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(t->live_ctxs)));
  a.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(t->live_sessions)));
  return a;
}

}  // namespace

void RegisterTls(Napi::Env env, Napi::Object exports, TlsState* state) {
  const std::pair<const char*, Napi::Function::Callback> fns[] = {
      {"ringio_tls_ctx_new", CtxNew}, {"ringio_tls_ctx_sni", CtxSni}, {"ringio_tls_ctx_free", CtxFree},
      {"ringio_tls_new", New},        {"ringio_tls_free", Free},      {"ringio_tls_shutdown", Shutdown},
      {"ringio_tls_error", Error},    {"ringio_tls_info", Info},      {"ringio_tls_counts", Counts},
  };
  for (const auto& f : fns) exports.Set(f.first, Napi::Function::New(env, f.second, f.first, state));
  const std::pair<const char*, napi_callback> hot[] = {{"ringio_tls_read", Read}, {"ringio_tls_write", Write}, {"ringio_tls_take", Take}};
  for (const auto& f : hot) {
    napi_value fn;
    NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, f.first, NAPI_AUTO_LENGTH, f.second, state, &fn));
    exports.Set(f.first, Napi::Value(env, fn));
  }
}

}  // namespace ringio
