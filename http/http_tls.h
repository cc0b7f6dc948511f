// The HTTP side's TLS context, made from PEM text: the server's certificate chain and key, and
// when a CA is given, client certificates required and checked against it (mutual TLS).
#pragma once

#include <openssl/ssl.h>

#include <string>

#include "absl/status/statusor.h"

namespace churnlab {

// A server SSL_CTX (TLS 1.2 at least) the caller owns (SSL_CTX_free). INVALID_ARGUMENT naming
// the flag (--tls-cert, --tls-key, --tls-ca) and OpenSSL's reason when the PEM does not load or
// the key does not match the certificate. An empty `ca_pem` asks no client certificate.
absl::StatusOr<SSL_CTX*> MakeSslContext(const std::string& cert_pem, const std::string& key_pem,
                                        const std::string& ca_pem);

}  // namespace churnlab
