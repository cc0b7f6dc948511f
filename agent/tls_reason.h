// Why a TLS handshake failed, as a small code the engine counts in phase "tls" (a failure cell's
// code; no errno applies). OpenSSL's own reasons are many and open-ended; these are the ones a
// load test meets and a user can act on, each with a fixed name.
#pragma once

#include <openssl/ssl.h>

#include <string>

namespace churnlab {

enum TlsReason : int {
  kTlsHandshakeFailed = 0,  // "HANDSHAKE_FAILED": an OpenSSL error not named below
  kTlsTimeout = 1,          // "TIMEOUT": not done within io_timeout
  kTlsEof = 2,              // "EOF": the server closed during the handshake
  kTlsReset = 3,            // "ECONNRESET"
  kTlsSocketError = 4,      // "SOCKET_ERROR": another error of the socket
  kTlsNotTls = 5,           // "NOT_TLS": the server answered something that is not TLS
  kTlsNoCommonVersion = 6,  // "NO_COMMON_VERSION": no TLS version both sides speak
  // The server's certificate did not verify (the CA file, its name, its dates):
  kTlsCertVerify = 10,         // "CERT_VERIFY_FAILED": another verification error
  kTlsCertExpired = 11,        // "CERT_HAS_EXPIRED"
  kTlsCertNotYetValid = 12,    // "CERT_NOT_YET_VALID"
  kTlsCertSelfSigned = 13,     // "CERT_SELF_SIGNED": a self-signed leaf, not in the CA file
  kTlsCertUnknownIssuer = 14,  // "CERT_UNKNOWN_ISSUER": no chain to the CA file
  kTlsCertNameMismatch = 15,   // "CERT_NAME_MISMATCH": not the target's name or IP
  kTlsAlertBase = 20,          // 20 + the alert's description (0..120) the server sent
};
inline constexpr int kTlsMaxAlert = 120;

// The reason's fixed name, e.g. "CERT_HAS_EXPIRED", "ALERT_HANDSHAKE_FAILURE".
std::string TlsReasonName(int code);

// Why the handshake on `ssl` failed: `ssl_error` is what SSL_get_error said, `saved_errno` the
// errno right after the call. Reads and clears the thread's OpenSSL error queue.
int ClassifyTlsFailure(const SSL* ssl, int ssl_error, int saved_errno);

}  // namespace churnlab
