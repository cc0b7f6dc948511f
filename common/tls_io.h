// Reading and writing a TLS connection the way recv() and send() answer, so one connection
// state machine serves plain TCP and TLS alike (the engine's and the target's), plus OpenSSL's
// error queue as text for messages.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <string>

#include "common/os_sys_calls.h"

namespace churnlab {

// Bytes, 0 at the end of the stream (close_notify, or a close without one), or -1 with EAGAIN
// (a record not complete yet, or the other direction needed first), the socket's errno, or
// EPROTO for a TLS error. The thread's OpenSSL error queue is left empty.
SysCallResult TlsRead(SSL* ssl, void* buf, size_t len);
SysCallResult TlsWrite(SSL* ssl, const void* buf, size_t len);
// Frees `ssl`, sending close_notify first when `notify` and the handshake was done (without
// waiting for the peer's); either way its session stays resumable. The fd stays open.
void TlsFree(SSL* ssl, bool notify);
// The thread's OpenSSL error queue as "a; b", emptied; "no detail" when it was empty.
std::string OpenSslErrors();

}  // namespace churnlab
