// churnlab-target's TLS: the server context (certificate and key, TLS 1.2 and 1.3, session
// tickets and a session cache so clients can resume, ALPN http/1.1 for https), and a self-signed
// ECDSA certificate made on the spot when none is given.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net_address.h"

namespace churnlab {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// A server context from PEM files. INVALID_ARGUMENT naming the file that cannot be read or the
// key that does not match the certificate. `http` offers ALPN http/1.1.
absl::StatusOr<SslCtxPtr> MakeServerTlsContext(const std::string& cert_file,
                                               const std::string& key_file, bool http);

// A key and a certificate it signed for itself; owned.
struct SelfSigned {
  SelfSigned() = default;
  SelfSigned(const SelfSigned&) = delete;
  SelfSigned& operator=(const SelfSigned&) = delete;
  ~SelfSigned();
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
};
// Into *out: a new key (`key_type` EVP_PKEY_EC on P-256, or EVP_PKEY_RSA of 2,048 bits) and a
// certificate valid from an hour ago for 30 days, for "localhost" and every address in `listen`
// (a wildcard adds 127.0.0.1 and ::1), its own CA. INTERNAL when OpenSSL fails.
absl::Status MakeSelfSigned(const std::vector<SocketAddress>& listen, int key_type,
                            SelfSigned* out);

struct GeneratedCertificate {
  std::string dir;  // made for the pair; the caller removes it
  std::string cert_file;
  std::string key_file;
};
// A self-signed ECDSA P-256 certificate valid from an hour ago for 30 days, for "localhost" and
// every address in `listen` (a wildcard adds 127.0.0.1 and ::1), written with its key to a new
// directory under $TMPDIR (or /tmp). The certificate is its own CA: clients verify with
// --target-ca=cert_file.
absl::StatusOr<GeneratedCertificate> WriteSelfSignedCertificate(
    const std::vector<SocketAddress>& listen);

}  // namespace churnlab
