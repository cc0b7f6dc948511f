// The engine's TLS client side, one per engine thread: the context (CA file or none, TLS 1.2 and
// 1.3, ALPN for https), each connection's SSL object with its server name and the name its
// certificate must carry, and the sessions kept per (source IP, target) for resumption. Reads
// and writes go through common/tls_io.h.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "common/engine_params.h"
#include "common/net_address.h"

namespace churnlab {

class TlsClient {
 public:
  // INVALID_ARGUMENT naming the CA file (or text) when it cannot be read as PEM certificates;
  // INTERNAL when OpenSSL fails.
  static absl::StatusOr<std::unique_ptr<TlsClient>> Create(const EngineParams& params);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // A client SSL on the connected `fd`, for `pair`: the server name is `name` (none for an IP
  // literal), and the certificate must carry `name`, or `address`'s IP when `name` is empty
  // (unless insecure). On resumption's turns it offers the pair's newest session (none before the
  // pair's first handshake gave one). nullptr when
  // OpenSSL cannot make one.
  SSL* Open(int fd, uint32_t pair, const std::string& name, const SocketAddress& address);

  enum class Step : uint8_t { kDone, kPending, kFailed };
  // One step of the handshake. kFailed sets *reason (a TlsReason).
  static Step Handshake(SSL* ssl, int* reason);
  // Whether the server sent a session ticket (or, TLS 1.2, a session) since Open.
  static bool GotSession(const SSL* ssl);
  // TLS 1.3, where sessions come after the handshake.
  static bool IsTls13(const SSL* ssl) { return SSL_version(ssl) >= TLS1_3_VERSION; }
  bool resuming() const { return resumption_ > 0; }

 private:
  TlsClient(SSL_CTX* ctx, const TlsClientParams& params);
  // OpenSSL's new-session callback: keeps the session as its pair's newest.
  static int OnNewSession(SSL* ssl, SSL_SESSION* session);
  // Deterministic: of the connections whose pair has a session kept, the share that offers it is
  // `resumption`.
  bool ResumptionTurn();

  SSL_CTX* ctx_;
  const bool insecure_;
  const double resumption_;
  double credit_ = 0;
  // Per pair, the newest session; owned. Only pairs that got one have an entry, so a shard of
  // 4,096 sources and 1,000 targets costs what it uses.
  std::unordered_map<uint32_t, SSL_SESSION*> sessions_;
};

}  // namespace churnlab
