#include "agent/tls_client.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "agent/tls_key_methods.h"
#include "agent/tls_reason.h"
#include "common/tls_io.h"

namespace churnlab {
namespace {

// SSL app data: the pair index shifted left once; the low bit says a session came.
uintptr_t Tag(uint32_t pair) { return uintptr_t{pair} << 1; }
uintptr_t TagOf(const SSL* ssl) { return reinterpret_cast<uintptr_t>(SSL_get_app_data(ssl)); }

// The CAs to verify against: the PEM text when given, else the file.
absl::Status LoadCas(SSL_CTX* ctx, const TlsClientParams& tls) {
  if (tls.ca_pem.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, tls.ca_file.c_str(), nullptr) == 1) {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(absl::StrCat("target_ca: cannot load '", tls.ca_file,
                                                   "' as PEM certificates: ", OpenSslErrors()));
  }
  BIO* bio = BIO_new_mem_buf(tls.ca_pem.data(), static_cast<int>(tls.ca_pem.size()));
  STACK_OF(X509_INFO)* infos =
      bio ? PEM_X509_INFO_read_bio(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  int added = 0;
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (int i = 0; infos != nullptr && i < sk_X509_INFO_num(infos); ++i) {
    X509_INFO* info = sk_X509_INFO_value(infos, i);
    if (info->x509 != nullptr && X509_STORE_add_cert(store, info->x509) == 1) ++added;
  }
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
  if (added == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("target_ca: no PEM certificate in it: ", OpenSslErrors()));
  }
  ERR_clear_error();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsClient>> TlsClient::Create(const EngineParams& params) {
  // A quarter of a full handshake's client CPU otherwise goes to decoding the server's key.
  UseBuiltInKeyMethods();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return absl::InternalError(absl::StrCat("SSL_CTX_new: ", OpenSslErrors()));
  std::unique_ptr<TlsClient> client(new TlsClient(ctx, params.tls));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A server that closes without close_notify (most HTTP servers after "Connection: close")
  // ends the stream; bodies are delimited by their own length.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Whole flights in one read() instead of two per record (header, then body): a full handshake
  // and its response took 18 reads. Bytes OpenSSL read ahead wait in its buffer, not the socket's:
  // the engine waits for an edge without having read to EAGAIN only where what it waits for
  // follows its own next write (the response after the request), or when it is closing.
  SSL_CTX_set_read_ahead(ctx, 1);
  if (params.protocol == Protocol::kHttps) {
    static constexpr unsigned char kAlpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn) - 1);
  }
  if (params.tls.insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    if (absl::Status s = LoadCas(ctx, params.tls); !s.ok()) return s;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  SSL_CTX_set_app_data(ctx, client.get());
  if (params.tls.resumption > 0) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, &TlsClient::OnNewSession);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  return client;
}

TlsClient::TlsClient(SSL_CTX* ctx, const TlsClientParams& params)
    : ctx_(ctx), insecure_(params.insecure), resumption_(params.resumption) {}

TlsClient::~TlsClient() {
  for (const auto& [pair, s] : sessions_) SSL_SESSION_free(s);
  SSL_CTX_free(ctx_);
}

int TlsClient::OnNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<TlsClient*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  uintptr_t tag = TagOf(ssl);
  SSL_set_app_data(ssl, reinterpret_cast<void*>(tag | 1));
  SSL_SESSION*& kept = self->sessions_[tag >> 1];
  SSL_SESSION_free(kept);
  kept = session;
  return 1;  // the session is ours now
}

bool TlsClient::ResumptionTurn() {
  credit_ += resumption_;
  if (credit_ < 1) return false;
  credit_ -= 1;
  return true;
}

SSL* TlsClient::Open(int fd, uint32_t pair, const std::string& name, const SocketAddress& address) {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return nullptr;
  bool ok = SSL_set_fd(ssl, fd) == 1;
  SSL_set_app_data(ssl, reinterpret_cast<void*>(Tag(pair)));
  if (!name.empty()) ok = ok && SSL_set_tlsext_host_name(ssl, name.c_str()) == 1;
  if (!insecure_) {
    ok = ok && (name.empty() ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
                                                             address.IpString().c_str()) == 1
                             : SSL_set1_host(ssl, name.c_str()) == 1);
  }
  auto kept = sessions_.find(pair);
  if (ok && kept != sessions_.end() && ResumptionTurn()) {
    ok = SSL_set_session(ssl, kept->second) == 1;
  }
  if (!ok) {
    ERR_clear_error();
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_connect_state(ssl);
  return ssl;
}

TlsClient::Step TlsClient::Handshake(SSL* ssl, int* reason) {
  errno = 0;
  int rc = SSL_do_handshake(ssl);
  if (rc == 1) return Step::kDone;
  int saved_errno = errno;
  int error = SSL_get_error(ssl, rc);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return Step::kPending;
  *reason = ClassifyTlsFailure(ssl, error, saved_errno);
  return Step::kFailed;
}

bool TlsClient::GotSession(const SSL* ssl) { return (TagOf(ssl) & 1) != 0; }

}  // namespace churnlab
