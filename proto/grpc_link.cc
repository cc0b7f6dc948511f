#include "proto/grpc_link.h"

#include <grpcpp/support/client_interceptor.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/net_address.h"
#include "common/target_names.h"

namespace churnlab {
namespace {

constexpr char kAuthorization[] = "authorization";

// Adds the token to every call's initial metadata.
class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(const std::string& header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({kAuthorization, header_});
    }
    methods->Proceed();
  }

 private:
  const std::string& header_;
};

class TokenInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::string token) : header_(absl::StrCat("Bearer ", token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(header_);
  }

 private:
  std::string header_;
};

absl::StatusOr<std::string> ReadSecret(const std::string& flag, const std::string& path) {
  if (path.empty()) return std::string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  std::string content = text.str();
  if (absl::StripAsciiWhitespace(content).empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", path, " is empty"));
  }
  return content;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

void AddSecurityFlags(FlagSet& flags, SecurityFlags* f, bool server,
                      const std::string& tls_prefix) {
  f->tls_prefix = tls_prefix;
  const std::string cert = tls_prefix + "tls-cert";
  const std::string key = tls_prefix + "tls-key";
  flags.String("token-file", &f->token_file,
               server ? "file holding the bearer token every client must present"
                      : "file holding the coordinator's bearer token");
  flags.String(cert, &f->tls_cert,
               server ? "PEM certificate to serve TLS with (with --" + key + ")"
                      : "PEM client certificate for mutual TLS (with --" + key + ")");
  flags.String(key, &f->tls_key, "PEM private key of --" + cert);
  flags.String(tls_prefix + "tls-ca", &f->tls_ca,
               server ? "PEM CA: require client certificates it signed (mutual TLS)"
                      : "PEM CA that signed the coordinator's certificate; turns TLS on");
}

absl::StatusOr<LinkSecurity> LoadLinkSecurity(const SecurityFlags& flags) {
  LinkSecurity out;
  absl::StatusOr<std::string> token = ReadSecret("token-file", flags.token_file);
  if (!token.ok()) return token.status();
  out.token = std::string(absl::StripAsciiWhitespace(*token));
  const std::string& p = flags.tls_prefix;
  for (auto [flag, path, field] : {std::tuple{p + "tls-cert", &flags.tls_cert, &out.tls_cert},
                                   std::tuple{p + "tls-key", &flags.tls_key, &out.tls_key},
                                   std::tuple{p + "tls-ca", &flags.tls_ca, &out.tls_ca}}) {
    absl::StatusOr<std::string> pem = ReadSecret(flag, *path);
    if (!pem.ok()) return pem.status();
    *field = *std::move(pem);
  }
  if (out.tls_cert.empty() != out.tls_key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", p, "tls-cert and --", p, "tls-key go together"));
  }
  return out;
}

absl::Status CheckCoordinatorAddress(const std::string& flag, const std::string& address) {
  // A gRPC target URI ("dns:///h:7400", "unix:/run/c.sock") is gRPC's to check.
  for (absl::string_view scheme : {"dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:"}) {
    if (absl::StartsWith(address, scheme)) return absl::OkStatus();
  }
  int port = 0;
  if (absl::StatusOr<SocketAddress> ip = SocketAddress::ParseIpPort(address); ip.ok()) {
    port = ip->port();
  } else if (absl::StatusOr<NamedTarget> named = ParseNamedTarget(address); named.ok()) {
    port = named->port;
  }
  if (port > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", address,
                   ": want the coordinator's HOST:PORT (an IP or a DNS name, port 1-65535, like "
                   "127.0.0.1:7400)"));
}

std::shared_ptr<grpc::Channel> DialCoordinator(const std::string& address,
                                               const LinkSecurity& security) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);  // pings even while nothing is sent
  // gRPC's own reconnect backoff grows to 120 s: after half a minute without a coordinator, a
  // channel failed every call at once for 10 s and more after the coordinator was back (an agent
  // missed a restart that way). The callers pace their retries themselves (an agent's session
  // up to 5 s apart), so the channel tries again within a second of being asked.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kReconnectBackoffMs);
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      security.tls() ? grpc::SslCredentials(grpc::SslCredentialsOptions{
                           security.tls_ca, security.tls_key, security.tls_cert})
                     : grpc::InsecureChannelCredentials();
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!security.token.empty()) {
    interceptors.push_back(std::make_unique<TokenInterceptorFactory>(security.token));
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, credentials, args,
                                                                 std::move(interceptors));
}

void ConfigureCoordinatorServer(grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  // The server pings only connections with a call open (an agent's stream). A client between
  // calls, such as a script's channel, may read its socket only every few seconds (gRPC's
  // backup poller) and would miss the 1.5 s ack deadline; the server would then close its
  // connection and the client's next call fail with "Socket closed".
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Clients ping every second; without these the server would call that abuse (GOAWAY).
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              kKeepaliveTimeMs / 2);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // A connection that has not finished its TLS and HTTP/2 handshakes within 10 s is closed (a
  // socket that says nothing held its fd for as long as it stayed open), and one with no call
  // open for a minute is closed too: an agent always has its stream open, and a CLI's channel
  // reconnects on its next call.
  builder->AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, kServerHandshakeTimeoutMs);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, kServerIdleTimeoutMs);
}

std::shared_ptr<grpc::ServerCredentials> CoordinatorCredentials(const LinkSecurity& security) {
  if (security.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      security.tls_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = security.tls_ca;
  options.pem_key_cert_pairs.push_back({security.tls_key, security.tls_cert});
  return grpc::SslServerCredentials(options);
}

bool BearerTokenMatches(std::string_view authorization, const std::string& token) {
  if (token.empty()) return true;
  // The scheme's name is case-insensitive (RFC 9110 11.1): "bearer abc" is the same credential.
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(authorization.data(), kScheme.size()),
                              absl::string_view(kScheme.data(), kScheme.size()))) {
    return false;
  }
  return ConstantTimeEquals(authorization.substr(kScheme.size()), token);
}

absl::Status CheckBearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                              const std::string& token) {
  if (token.empty()) return absl::OkStatus();
  auto it = metadata.find(kAuthorization);
  if (it == metadata.end()) {
    return absl::UnauthenticatedError("this coordinator needs a token (--token-file)");
  }
  if (!BearerTokenMatches(std::string_view(it->second.data(), it->second.size()), token)) {
    return absl::UnauthenticatedError("wrong token");
  }
  return absl::OkStatus();
}

}  // namespace churnlab
