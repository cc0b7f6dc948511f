#include "target/target_tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/tls_io.h"

namespace churnlab {
namespace {

int SelectHttp11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                 unsigned int inlen, void*) {
  static constexpr unsigned char kHttp11[] = "\x08http/1.1";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof(kHttp11) - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // a client without http/1.1 goes on without ALPN
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// "DNS:localhost,IP:127.0.0.1,..." for the listening addresses.
std::string SubjectAltNames(const std::vector<SocketAddress>& listen) {
  std::vector<std::string> names = {"DNS:localhost"};
  auto add = [&names](const std::string& ip) {
    std::string entry = absl::StrCat("IP:", ip);
    for (const std::string& n : names) {
      if (n == entry) return;
    }
    names.push_back(entry);
  };
  for (const SocketAddress& a : listen) {
    if (a.is_unspecified()) {
      add("127.0.0.1");
      add("::1");
    } else {
      add(a.IpString());
    }
  }
  return absl::StrJoin(names, ",");
}

absl::Status WritePem(const std::string& path, const SelfSigned& o, bool key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", path));
  bool ok = key ? PEM_write_PrivateKey(f, o.key, nullptr, nullptr, 0, nullptr, nullptr) == 1
                : PEM_write_X509(f, o.cert) == 1;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return absl::InternalError(absl::StrCat("writing ", path, ": ", OpenSslErrors()));
  return absl::OkStatus();
}

}  // namespace

SelfSigned::~SelfSigned() {
  EVP_PKEY_free(key);
  X509_free(cert);
}

absl::Status MakeSelfSigned(const std::vector<SocketAddress>& listen, int key_type, SelfSigned* o) {
  o->key = key_type == EVP_PKEY_RSA ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
  o->cert = X509_new();
  if (o->key == nullptr || o->cert == nullptr) return absl::InternalError(OpenSslErrors());
  X509_set_version(o->cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(o->cert), static_cast<long>(time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(o->cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(o->cert), 30L * 24 * 3600);
  X509_set_pubkey(o->cert, o->key);
  X509_NAME* name = X509_get_subject_name(o->cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("churnlab-target"), -1, -1, 0);
  X509_set_issuer_name(o->cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, o->cert, o->cert, nullptr, nullptr, 0);
  std::string sans = SubjectAltNames(listen);
  for (auto [nid, value] : {std::pair<int, const char*>{NID_subject_alt_name, sans.c_str()},
                            {NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr || X509_add_ext(o->cert, ext, -1) != 1) {
      X509_EXTENSION_free(ext);
      return absl::InternalError(absl::StrCat("certificate extension: ", OpenSslErrors()));
    }
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(o->cert, o->key, EVP_sha256()) == 0) {
    return absl::InternalError(absl::StrCat("X509_sign: ", OpenSslErrors()));
  }
  return absl::OkStatus();
}

absl::StatusOr<SslCtxPtr> MakeServerTlsContext(const std::string& cert_file,
                                               const std::string& key_file, bool http) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (ctx == nullptr) return absl::InternalError(absl::StrCat("SSL_CTX_new: ", OpenSslErrors()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_cert: cannot load '", cert_file, "': ", OpenSslErrors()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_key: cannot load '", key_file, "' as the certificate's key: ", OpenSslErrors()));
  }
  // Resumption both ways: tickets (the default) and the server's session cache for IDs.
  static constexpr unsigned char kContext[] = "churnlab-target";
  SSL_CTX_set_session_id_context(ctx.get(), kContext, sizeof(kContext) - 1);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (http) SSL_CTX_set_alpn_select_cb(ctx.get(), &SelectHttp11, nullptr);
  return ctx;
}

absl::StatusOr<GeneratedCertificate> WriteSelfSignedCertificate(
    const std::vector<SocketAddress>& listen) {
  SelfSigned o;
  if (absl::Status s = MakeSelfSigned(listen, EVP_PKEY_EC, &o); !s.ok()) return s;
  const char* tmp = std::getenv("TMPDIR");
  std::string templ =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/churnlab-target-tls.XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdtemp ", templ));
  }
  GeneratedCertificate out{templ, templ + "/cert.pem", templ + "/key.pem"};
  if (absl::Status s = WritePem(out.cert_file, o, false); !s.ok()) return s;
  if (absl::Status s = WritePem(out.key_file, o, true); !s.ok()) return s;
  return out;
}

}  // namespace churnlab
