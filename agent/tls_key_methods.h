// Certificates' public keys decoded by OpenSSL's built-in key methods instead of its provider
// decoders, which a full handshake's client side pays for at every connection.
//
// OpenSSL 3.0 decodes the public key of every certificate it parses through the provider
// decoders, building a decoder chain from a walk over all of them each time: parsing the server's
// ECDSA P-256 certificate costs 90 us of CPU here (d2i_X509 in a loop), a quarter of the client's
// ~360 us full TLS 1.3 handshake. It takes its built-in ("legacy") key methods instead when an
// ENGINE provides the key type's method; with OpenSSL's own EC and RSA methods registered that way
// the same certificate parses in 16 us and the client's handshake costs ~240 us. The keys and the
// signature checks are OpenSSL's own EC and RSA code either way.
//
// It is process-wide: every operation on an EC or RSA key then uses the built-in methods, keys
// loaded from files included (a TLS link's own key signs through a legacy copy of it), and
// EVP_PKEY_Q_keygen(.., "EC", curve) fails in that process (the built-in method does not take the
// curve's name as a parameter). Each lookup of the method takes OpenSSL's global ENGINE lock, a
// few times a handshake, which the engine's threads share. Only the processes that open TLS
// connections to targets register it; they load keys, they make none.
#pragma once

namespace churnlab {

// Registers, once per process, an ENGINE whose key methods for EC and RSA are OpenSSL's built-in
// ones, as the methods for those key types. Whether it is in place; false only when OpenSSL
// refused it (its error queue emptied), and then OpenSSL works as before.
bool UseBuiltInKeyMethods();

}  // namespace churnlab
