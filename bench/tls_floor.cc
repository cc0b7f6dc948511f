// The floor under a TLS client's full handshake: OpenSSL's own client-side CPU for one full TLS
// 1.3 handshake against an in-process server over memory (no sockets, no TCP, no HTTP), the way
// churnlab's engine sets its client up (no verification, ALPN http/1.1, no session cache), with an
// ECDSA P-256 certificate; then the same once OpenSSL's built-in key methods are registered
// (agent/tls_key_methods.h), and what parsing the certificate costs either way. Only the client's
// calls are timed, by the thread's CPU clock. With THREADS > 1, that many threads do HANDSHAKES
// each at once, and the line gives their handshakes per second of wall time too: the built-in
// methods are looked up under OpenSSL's global ENGINE lock, which threads then share.
// Usage: churnlab-tls-floor [HANDSHAKES=2000] [THREADS=1]
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "agent/tls_key_methods.h"
#include "target/target_tls.h"

namespace {

double CpuMicros() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

// One SSL_do_handshake step; the client's are timed into *client_us. Whether it finished.
bool Step(SSL* ssl, double* client_us) {
  double start = client_us != nullptr ? CpuMicros() : 0;
  int rc = SSL_do_handshake(ssl);
  if (client_us != nullptr) *client_us += CpuMicros() - start;
  if (rc == 1) return true;
  int error = SSL_get_error(ssl, rc);
  if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
    ERR_print_errors_fp(stderr);
    std::exit(1);
  }
  return false;
}

// The client's CPU per full handshake, in microseconds, over `n` of them.
double ClientMicrosPerHandshake(SSL_CTX* sctx, SSL_CTX* cctx, int n) {
  double client_us = 0;
  for (int i = 0; i < n; ++i) {
    double start = CpuMicros();
    SSL* c = SSL_new(cctx);
    client_us += CpuMicros() - start;
    SSL* s = SSL_new(sctx);
    BIO* cbio = nullptr;
    BIO* sbio = nullptr;
    BIO_new_bio_pair(&cbio, 0, &sbio, 0);
    SSL_set_bio(c, cbio, cbio);
    SSL_set_bio(s, sbio, sbio);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    bool client_done = false;
    bool server_done = false;
    while (!client_done || !server_done) {
      if (!client_done) client_done = Step(c, &client_us);
      if (!server_done) server_done = Step(s, nullptr);
    }
    if (SSL_session_reused(c) == 1) std::exit(1);  // every handshake must be full
    SSL_free(s);
    start = CpuMicros();
    SSL_free(c);
    client_us += CpuMicros() - start;
  }
  return client_us / n;
}

double WallSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct Round {
  double client_us;   // client CPU per handshake, averaged over the threads
  double per_second;  // handshakes of all threads per second of wall time
};

Round Handshakes(SSL_CTX* sctx, SSL_CTX* cctx, int n, int threads) {
  std::vector<double> micros(threads);
  std::vector<std::thread> workers;
  double start = WallSeconds();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] { micros[t] = ClientMicrosPerHandshake(sctx, cctx, n); });
  }
  for (std::thread& w : workers) w.join();
  double wall = WallSeconds() - start;
  double sum = 0;
  for (double m : micros) sum += m;
  return Round{sum / threads, threads * n / wall};
}

double ParseMicros(X509* cert, int n) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  double start = CpuMicros();
  for (int i = 0; i < n; ++i) {
    const unsigned char* p = der;
    X509* parsed = d2i_X509(nullptr, &p, len);
    if (parsed == nullptr || X509_get0_pubkey(parsed) == nullptr) std::exit(1);
    X509_free(parsed);
  }
  double micros = (CpuMicros() - start) / n;
  OPENSSL_free(der);
  return micros;
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  if (n < 1 || n > 10'000'000 || threads < 1 || threads > 64) {
    std::fprintf(stderr,
                 "usage: churnlab-tls-floor [HANDSHAKES=2000, 1..10000000] [THREADS=1, 1..64]\n");
    return 2;
  }
  churnlab::SelfSigned server;  // churnlab-target's own, made before the methods are registered
  if (!churnlab::MakeSelfSigned({}, EVP_PKEY_EC, &server).ok()) return 1;
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(sctx, server.cert);
  SSL_CTX_use_PrivateKey(sctx, server.key);
  SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION);
  SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(sctx, 0);
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(cctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
  static constexpr unsigned char kAlpn[] = "\x08http/1.1";
  SSL_CTX_set_alpn_protos(cctx, kAlpn, sizeof(kAlpn) - 1);

  Handshakes(sctx, cctx, n / 10 + 1, threads);  // warm: the first ones fault pages in
  double parse = ParseMicros(server.cert, n);
  Round stock = Handshakes(sctx, cctx, n, threads);
  if (!churnlab::UseBuiltInKeyMethods()) return 1;
  double parse_builtin = ParseMicros(server.cert, n);
  Round builtin = Handshakes(sctx, cctx, n, threads);
  std::printf("%s, %d full TLS 1.3 handshakes in memory on each of %d thread(s), client side:\n",
              OpenSSL_version(OPENSSL_VERSION), n, threads);
  std::printf(
      "  provider decoders:    %6.1f us per handshake, %5.1f us of it parsing the certificate, "
      "%.0f handshakes/s (both sides)\n",
      stock.client_us, parse, stock.per_second);
  std::printf(
      "  built-in key methods: %6.1f us per handshake, %5.1f us of it parsing the certificate, "
      "%.0f handshakes/s (both sides)\n",
      builtin.client_us, parse_builtin, builtin.per_second);
  return 0;
}
