// ENGINE is deprecated in OpenSSL 3.0 but present (Debian builds it): it is the documented way to
// choose a key type's method.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "agent/tls_key_methods.h"

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <iterator>

namespace churnlab {
namespace {

constexpr int kKeyTypes[] = {EVP_PKEY_EC, EVP_PKEY_RSA};

// The ENGINE's key methods: the list of key types when `method` is null, else OpenSSL's built-in
// method for `nid`.
int BuiltInMethods(ENGINE* /*engine*/, EVP_PKEY_METHOD** method, const int** nids, int nid) {
  if (method == nullptr) {
    *nids = kKeyTypes;
    return static_cast<int>(std::size(kKeyTypes));
  }
  *method = const_cast<EVP_PKEY_METHOD*>(EVP_PKEY_meth_find(nid));
  return *method != nullptr ? 1 : 0;
}

bool Register() {
  // Kept for the process's life once registered: the method table refers to it.
  ENGINE* engine = ENGINE_new();
  if (engine == nullptr) return false;
  bool ok = ENGINE_set_id(engine, "churnlab-builtin-keys") == 1 &&
            ENGINE_set_name(engine, "OpenSSL's built-in EC and RSA key methods") == 1 &&
            ENGINE_set_pkey_meths(engine, &BuiltInMethods) == 1 &&
            ENGINE_register_pkey_meths(engine) == 1;
  if (!ok) {
    // Nothing half in place: OpenSSL works as before.
    ENGINE_unregister_pkey_meths(engine);
    ENGINE_free(engine);
  }
  ERR_clear_error();
  return ok;
}

}  // namespace

bool UseBuiltInKeyMethods() {
  static const bool used = Register();
  return used;
}

}  // namespace churnlab
