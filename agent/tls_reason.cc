#include "agent/tls_reason.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace churnlab {
namespace {

int FromVerifyResult(long result) {
  switch (result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return kTlsCertExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return kTlsCertNotYetValid;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return kTlsCertSelfSigned;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return kTlsCertUnknownIssuer;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return kTlsCertNameMismatch;
    default:
      return kTlsCertVerify;
  }
}

// The reason from the first SSL-library error on the queue.
int FromErrorQueue() {
  int reason = kTlsHandshakeFailed;
  while (unsigned long e = ERR_get_error()) {
    if (reason != kTlsHandshakeFailed || ERR_GET_LIB(e) != ERR_LIB_SSL) continue;
    int r = ERR_GET_REASON(e);
    if (r >= SSL_AD_REASON_OFFSET && r <= SSL_AD_REASON_OFFSET + kTlsMaxAlert) {
      reason = kTlsAlertBase + (r - SSL_AD_REASON_OFFSET);
    } else if (r == SSL_R_WRONG_VERSION_NUMBER || r == SSL_R_PACKET_LENGTH_TOO_LONG) {
      reason = kTlsNotTls;
    } else if (r == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      reason = kTlsEof;
    } else if (r == SSL_R_UNSUPPORTED_PROTOCOL || r == SSL_R_NO_PROTOCOLS_AVAILABLE) {
      reason = kTlsNoCommonVersion;
    }
  }
  return reason;
}

}  // namespace

std::string TlsReasonName(int code) {
  switch (code) {
    case kTlsHandshakeFailed:
      return "HANDSHAKE_FAILED";
    case kTlsTimeout:
      return "TIMEOUT";
    case kTlsEof:
      return "EOF";
    case kTlsReset:
      return "ECONNRESET";
    case kTlsSocketError:
      return "SOCKET_ERROR";
    case kTlsNotTls:
      return "NOT_TLS";
    case kTlsNoCommonVersion:
      return "NO_COMMON_VERSION";
    case kTlsCertVerify:
      return "CERT_VERIFY_FAILED";
    case kTlsCertExpired:
      return "CERT_HAS_EXPIRED";
    case kTlsCertNotYetValid:
      return "CERT_NOT_YET_VALID";
    case kTlsCertSelfSigned:
      return "CERT_SELF_SIGNED";
    case kTlsCertUnknownIssuer:
      return "CERT_UNKNOWN_ISSUER";
    case kTlsCertNameMismatch:
      return "CERT_NAME_MISMATCH";
    default:
      break;
  }
  if (code >= kTlsAlertBase && code <= kTlsAlertBase + kTlsMaxAlert) {
    // "handshake failure" -> "ALERT_HANDSHAKE_FAILURE"
    std::string text = SSL_alert_desc_string_long(code - kTlsAlertBase);
    absl::AsciiStrToUpper(&text);
    return absl::StrCat("ALERT_", absl::StrReplaceAll(text, {{" ", "_"}}));
  }
  return absl::StrCat("TLS_", code);
}

int ClassifyTlsFailure(const SSL* ssl, int ssl_error, int saved_errno) {
  // Without verification (--insecure) OpenSSL still records what it found wrong with the
  // certificate; that is no reason for this failure then.
  long verify =
      (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0 ? SSL_get_verify_result(ssl) : X509_V_OK;
  int queued = FromErrorQueue();  // read (and cleared) in every case
  if (verify != X509_V_OK) return FromVerifyResult(verify);
  if (ssl_error == SSL_ERROR_SYSCALL) {
    if (saved_errno == 0) return queued != kTlsHandshakeFailed ? queued : kTlsEof;
    return saved_errno == ECONNRESET ? kTlsReset : kTlsSocketError;
  }
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return kTlsEof;
  return queued;
}

}  // namespace churnlab
