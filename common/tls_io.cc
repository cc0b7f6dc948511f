#include "common/tls_io.h"

#include <errno.h>
#include <openssl/err.h>

#include "absl/strings/str_cat.h"

namespace churnlab {
namespace {

SysCallResult Answer(SSL* ssl, int rc) {
  if (rc > 0) return SysCallResult{rc, 0};
  int saved_errno = errno;
  int error = SSL_get_error(ssl, rc);
  ERR_clear_error();
  switch (error) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return SysCallResult{-1, EAGAIN};
    case SSL_ERROR_ZERO_RETURN:
      return SysCallResult{0, 0};
    case SSL_ERROR_SYSCALL:
      return saved_errno == 0 ? SysCallResult{0, 0} : SysCallResult{-1, saved_errno};
    default:
      return SysCallResult{-1, EPROTO};
  }
}

}  // namespace

SysCallResult TlsRead(SSL* ssl, void* buf, size_t len) {
  errno = 0;
  return Answer(ssl, SSL_read(ssl, buf, static_cast<int>(len)));
}

SysCallResult TlsWrite(SSL* ssl, const void* buf, size_t len) {
  errno = 0;
  return Answer(ssl, SSL_write(ssl, buf, static_cast<int>(len)));
}

void TlsFree(SSL* ssl, bool notify) {
  if (notify && SSL_is_init_finished(ssl)) {
    SSL_shutdown(ssl);
  } else {
    // Without this OpenSSL takes a connection freed unshut for a broken one and makes its session
    // unresumable: a 404, a timeout or an RST close does not make TLS's session bad.
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  }
  ERR_clear_error();
  SSL_free(ssl);
}

std::string OpenSslErrors() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&text, text.empty() ? "" : "; ", buf);
  }
  return text.empty() ? "no detail" : text;
}

}  // namespace churnlab
