// With OpenSSL's built-in key methods registered, TLS works as before: handshakes with EC and
// RSA certificates, TLS 1.2 and 1.3, X25519 and P-256 key exchanges, verified against the right CA
// and refused against another; and a certificate's own signature still checks, a changed one not.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "agent/tls_key_methods.h"

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "target/target_tls.h"

namespace churnlab {
namespace {

std::vector<unsigned char> Der(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  std::vector<unsigned char> out(der, der + (len > 0 ? len : 0));
  OPENSSL_free(der);
  return out;
}

// 1 when the certificate in `der` verifies against its own key, 0 when not, -1 unparsable.
int VerifiesItself(const std::vector<unsigned char>& der) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (cert == nullptr) return -1;
  int ok = X509_verify(cert, X509_get0_pubkey(cert));
  X509_free(cert);
  ERR_clear_error();
  return ok;
}

// One handshake in memory: a server with `server`'s identity, a client trusting `ca` and offering
// key share `group` up to `version`. Whether both ends finished it.
bool Handshake(const SelfSigned& server, X509* ca, int version, const char* group) {
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(sctx, server.cert);
  SSL_CTX_use_PrivateKey(sctx, server.key);
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(cctx, version);
  SSL_CTX_set1_groups_list(cctx, group);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), ca);
  SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, nullptr);
  SSL* s = SSL_new(sctx);
  SSL* c = SSL_new(cctx);
  BIO* sbio = nullptr;
  BIO* cbio = nullptr;
  BIO_new_bio_pair(&sbio, 0, &cbio, 0);
  SSL_set_bio(s, sbio, sbio);
  SSL_set_bio(c, cbio, cbio);
  SSL_set_accept_state(s);
  SSL_set_connect_state(c);
  int client = 0;
  int srv = 0;
  for (int i = 0; i < 20 && (client != 1 || srv != 1); ++i) {
    if (client != 1) client = SSL_do_handshake(c);
    if (srv != 1) srv = SSL_do_handshake(s);
  }
  bool done = client == 1 && srv == 1 && SSL_version(c) == version;
  SSL_free(c);
  SSL_free(s);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  ERR_clear_error();
  return done;
}

TEST(TlsKeyMethodsTest, TlsAndSignaturesWorkAsBeforeOnceRegistered) {
  // Keys are made before the methods are registered, as keys are loaded, not made, in the
  // processes that use them; the servers' handshakes then sign with them through those methods.
  SelfSigned ec;
  SelfSigned rsa;
  ASSERT_TRUE(MakeSelfSigned({}, EVP_PKEY_EC, &ec).ok());
  ASSERT_TRUE(MakeSelfSigned({}, EVP_PKEY_RSA, &rsa).ok());

  ASSERT_TRUE(UseBuiltInKeyMethods());
  EXPECT_TRUE(UseBuiltInKeyMethods());  // once per process; again changes nothing
  for (int type : {EVP_PKEY_EC, EVP_PKEY_RSA}) {
    ENGINE* engine = ENGINE_get_pkey_meth_engine(type);
    EXPECT_NE(engine, nullptr) << OBJ_nid2sn(type);
    if (engine != nullptr) ENGINE_finish(engine);
  }

  for (const SelfSigned* id : {&ec, &rsa}) {
    const SelfSigned& other = id == &ec ? rsa : ec;
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
      // X25519 first; P-256 listed too, as TLS 1.2 takes an ECDSA certificate only on a curve the
      // client lists.
      for (const char* group : {"X25519:P-256", "P-256"}) {
        SCOPED_TRACE(std::string(id == &ec ? "EC" : "RSA") + " " + group + " " +
                     (version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2"));
        EXPECT_TRUE(Handshake(*id, id->cert, version, group));
        EXPECT_FALSE(Handshake(*id, other.cert, version, group));  // not its CA: refused
      }
    }
    std::vector<unsigned char> der = Der(id->cert);
    EXPECT_EQ(VerifiesItself(der), 1);
    der[der.size() - 3] ^= 0x01;  // inside the signature, the certificate's last field
    EXPECT_EQ(VerifiesItself(der), 0);
  }
}

}  // namespace
}  // namespace churnlab
