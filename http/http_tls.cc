#include "http/http_tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <vector>

#include "absl/strings/str_cat.h"

namespace churnlab {
namespace {

std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  char text[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, text, sizeof(text));
  return text;
}

// Every PEM certificate in `pem`, in order.
std::vector<X509*> ReadCertificates(const std::string& pem) {
  std::vector<X509*> out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) out.push_back(cert);
  ERR_clear_error();  // the end of the data reads as an error
  BIO_free(bio);
  return out;
}

}  // namespace

absl::StatusOr<SSL_CTX*> MakeSslContext(const std::string& cert_pem, const std::string& key_pem,
                                        const std::string& ca_pem) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError("OpenSSL: cannot make a TLS context");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  auto fail = [ctx](const std::string& what) {
    SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(absl::StrCat("HTTP TLS: ", what, ": ", OpenSslError()));
  };
  std::vector<X509*> chain = ReadCertificates(cert_pem);
  if (chain.empty()) return fail("no certificate in --tls-cert");
  bool ok = SSL_CTX_use_certificate(ctx, chain[0]) == 1;
  X509_free(chain[0]);
  for (size_t i = 1; i < chain.size(); ++i) {
    if (ok) {
      ok = SSL_CTX_add_extra_chain_cert(ctx, chain[i]) == 1;  // takes it
    } else {
      X509_free(chain[i]);
    }
  }
  if (!ok) return fail("--tls-cert");
  BIO* bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) return fail("--tls-key");
  ok = SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(key);
  if (!ok) return fail("--tls-key does not match --tls-cert");
  if (!ca_pem.empty()) {
    std::vector<X509*> cas = ReadCertificates(ca_pem);
    if (cas.empty()) return fail("no certificate in --tls-ca");
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (X509* ca : cas) {
      X509_STORE_add_cert(store, ca);
      X509_free(ca);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

}  // namespace churnlab
