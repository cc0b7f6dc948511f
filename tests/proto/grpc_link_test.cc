// The gRPC link's security: files read into tokens and PEM with errors naming flag and file, the
// bearer-token checks, and real loopback calls with and without the token, over TLS and mutual TLS.
#include "proto/grpc_link.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "churnlab/v1/control.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/support/child_process.h"

namespace churnlab {
namespace {

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// The error is INVALID_ARGUMENT and its message holds every one of `parts`.
void ExpectBadInput(const absl::StatusOr<LinkSecurity>& loaded,
                    const std::vector<std::string>& parts) {
  ASSERT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << loaded.status();
  for (const std::string& part : parts) {
    EXPECT_TRUE(absl::StrContains(loaded.status().message(), part))
        << loaded.status() << " does not name " << part;
  }
}

// A coordinator's address is HOST:PORT, checked where the flag enters: without a port gRPC
// dialed port 0 and the agent retried for ever.
TEST(CheckCoordinatorAddressTest, WantsAHostAndAPort) {
  for (const char* good :
       {"127.0.0.1:7400", "[::1]:7400", "coordinator.churnlab.svc:7400", "coordinator.:7400",
        "localhost:1", "10.0.0.5:65535", "dns:///coordinator:7400", "unix:/run/churnlab.sock"}) {
    EXPECT_TRUE(CheckCoordinatorAddress("coordinator", good).ok()) << good;
  }
  for (const char* bad : {"127.0.0.1", "127.0.0.1:0", "localhost", "", ":7400", "http://x:1",
                          "10.0.0.5:65536", "a b:1", "coordinator:7400:1"}) {
    absl::Status s = CheckCoordinatorAddress("coordinator", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.message().rfind(absl::StrCat("--coordinator=", bad, ": want"), 0), 0u) << s;
  }
}

TEST(LoadLinkSecurityTest, NoFilesMeansPlaintextWithoutAToken) {
  absl::StatusOr<LinkSecurity> loaded = LoadLinkSecurity({});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->token, "");
  EXPECT_FALSE(loaded->tls());
}

TEST(LoadLinkSecurityTest, TheTokenIsTrimmedAndPemIsKeptAsItIs) {
  const std::string dir = testing::MakeTempDir();
  const std::string cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  SecurityFlags flags;
  flags.token_file = WriteFile(dir, "token", "  s3cret token\n\n");
  flags.tls_cert = WriteFile(dir, "cert.pem", cert);
  flags.tls_key = WriteFile(dir, "key.pem", "KEY\n");
  flags.tls_ca = WriteFile(dir, "ca.pem", "CA\n");
  absl::StatusOr<LinkSecurity> loaded = LoadLinkSecurity(flags);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->token, "s3cret token");  // inner spaces are the token's own
  EXPECT_EQ(loaded->tls_cert, cert);
  EXPECT_EQ(loaded->tls_key, "KEY\n");
  EXPECT_EQ(loaded->tls_ca, "CA\n");
  EXPECT_TRUE(loaded->tls());
  // A client with only the CA speaks TLS too.
  flags.tls_cert = flags.tls_key = "";
  loaded = LoadLinkSecurity(flags);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->tls());
}

TEST(LoadLinkSecurityTest, AFileThatCannotBeReadIsNamedWithItsFlag) {
  const std::string dir = testing::MakeTempDir();
  const std::string missing = dir + "/no-such-file";
  SecurityFlags token;
  token.token_file = missing;
  ExpectBadInput(LoadLinkSecurity(token), {"--token-file", missing, "cannot read"});
  SecurityFlags cert;
  cert.tls_cert = missing;
  cert.tls_key = WriteFile(dir, "key.pem", "KEY");
  ExpectBadInput(LoadLinkSecurity(cert), {"--tls-cert", missing});
  SecurityFlags key;
  key.tls_cert = WriteFile(dir, "cert.pem", "CERT");
  key.tls_key = missing;
  ExpectBadInput(LoadLinkSecurity(key), {"--tls-key", missing});
  SecurityFlags ca;
  ca.tls_ca = missing;
  ExpectBadInput(LoadLinkSecurity(ca), {"--tls-ca", missing});
  // A directory is no file to read either.
  SecurityFlags directory;
  directory.token_file = dir;
  ExpectBadInput(LoadLinkSecurity(directory), {"--token-file", dir});
}

TEST(LoadLinkSecurityTest, AnEmptyFileIsAnErrorNotAnEmptyToken) {
  const std::string dir = testing::MakeTempDir();
  const std::string blank = WriteFile(dir, "blank", " \n\t\n");
  const std::string empty = WriteFile(dir, "empty", "");
  SecurityFlags token;
  token.token_file = blank;
  ExpectBadInput(LoadLinkSecurity(token), {"--token-file", blank, "is empty"});
  token.token_file = empty;
  ExpectBadInput(LoadLinkSecurity(token), {"--token-file", empty, "is empty"});
  SecurityFlags ca;
  ca.tls_ca = empty;
  ExpectBadInput(LoadLinkSecurity(ca), {"--tls-ca", empty, "is empty"});
}

TEST(LoadLinkSecurityTest, ACertificateAndItsKeyGoTogether) {
  const std::string dir = testing::MakeTempDir();
  SecurityFlags cert_only;
  cert_only.tls_cert = WriteFile(dir, "cert.pem", "CERT");
  ExpectBadInput(LoadLinkSecurity(cert_only), {"--tls-cert", "--tls-key"});
  SecurityFlags key_only;
  key_only.tls_key = WriteFile(dir, "key.pem", "KEY");
  key_only.tls_ca = WriteFile(dir, "ca.pem", "CA");
  ExpectBadInput(LoadLinkSecurity(key_only), {"--tls-cert", "--tls-key"});
}

// `args` (the program's name first) through `flags`.
absl::StatusOr<std::vector<std::string>> Parse(FlagSet& flags, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  return flags.Parse(static_cast<int>(argv.size()), argv.data());
}

// churnlab-target's own --tls-cert/--tls-key are the certificate it serves: its link to the
// coordinator takes prefixed flags, and says so in its errors (both used to be --tls-cert, and
// the link's could never be given).
TEST(SecurityFlagsTest, APrefixNamesTheLinksTlsFlags) {
  SecurityFlags f;
  FlagSet flags("churnlab-test", "");
  std::string serving;
  flags.String("tls-cert", &serving, "the certificate served");
  AddSecurityFlags(flags, &f, /*server=*/false, "coordinator-");
  absl::StatusOr<std::vector<std::string>> rest =
      Parse(flags, {"churnlab-test", "--tls-cert=/served", "--coordinator-tls-cert=/c",
                    "--coordinator-tls-ca=/a"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(serving, "/served");
  EXPECT_EQ(f.tls_cert, "/c");
  EXPECT_EQ(f.tls_ca, "/a");
  const std::string dir = testing::MakeTempDir();
  f.tls_cert = WriteFile(dir, "cert.pem", "CERT");
  f.tls_ca = "";
  ExpectBadInput(LoadLinkSecurity(f), {"--coordinator-tls-cert", "--coordinator-tls-key"});
}

TEST(SecurityFlagsTest, TheFourFlagsFillTheirFieldsAndSayWhichSideTheyAreFor) {
  for (bool server : {false, true}) {
    SecurityFlags f;
    FlagSet flags("churnlab-test", "");
    AddSecurityFlags(flags, &f, server);
    absl::StatusOr<std::vector<std::string>> rest = Parse(
        flags,
        {"churnlab-test", "--token-file=/t", "--tls-cert", "/c", "--tls-key=/k", "--tls-ca=/a"});
    ASSERT_TRUE(rest.ok()) << rest.status();
    EXPECT_TRUE(rest->empty());
    EXPECT_EQ(f.token_file, "/t");
    EXPECT_EQ(f.tls_cert, "/c");
    EXPECT_EQ(f.tls_key, "/k");
    EXPECT_EQ(f.tls_ca, "/a");
    // The coordinator requires client certificates with --tls-ca; a client trusts it.
    EXPECT_EQ(absl::StrContains(flags.Usage(), "require client certificates"), server)
        << flags.Usage();
  }
}

TEST(BearerTokenTest, OnlyTheExactTokenMatchesAfterTheSchemeInAnyCase) {
  EXPECT_TRUE(BearerTokenMatches("", ""));
  EXPECT_TRUE(BearerTokenMatches("anything", ""));  // no token: open
  EXPECT_TRUE(BearerTokenMatches("Bearer s3cret", "s3cret"));
  // The scheme's name is case-insensitive (RFC 9110 11.1); the token is not.
  EXPECT_TRUE(BearerTokenMatches("bearer s3cret", "s3cret"));
  EXPECT_TRUE(BearerTokenMatches("BEARER s3cret", "s3cret"));
  for (const char* wrong : {"", "s3cret", "Bearer s3cre", "Bearer s3cret2", "Bearer  s3cret",
                            "Bearer s3cret ", "Basic s3cret", "Bearer S3CRET"}) {
    EXPECT_FALSE(BearerTokenMatches(wrong, "s3cret")) << wrong;
  }
}

TEST(BearerTokenTest, CheckBearerTokenReadsTheAuthorizationMetadata) {
  const std::string authorization = "authorization", other = "x-other";
  const std::string right = "Bearer s3cret", wrong = "Bearer nope";
  std::multimap<grpc::string_ref, grpc::string_ref> none;
  none.emplace(other, right);  // the right value under another key counts for nothing
  EXPECT_TRUE(CheckBearerToken(none, "").ok());
  absl::Status missing = CheckBearerToken(none, "s3cret");
  EXPECT_EQ(missing.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(missing.message(), "--token-file")) << missing;

  std::multimap<grpc::string_ref, grpc::string_ref> bad = none;
  bad.emplace(authorization, wrong);
  absl::Status refused = CheckBearerToken(bad, "s3cret");
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(refused.message(), "wrong token");

  std::multimap<grpc::string_ref, grpc::string_ref> good = none;
  good.emplace(authorization, right);
  EXPECT_TRUE(CheckBearerToken(good, "s3cret").ok());
}

// A Control service whose ListAgents checks the token as the coordinator's services do, and
// keeps the authorization header each call carried.
class TokenCheckingControl final : public v1::Control::Service {
 public:
  explicit TokenCheckingControl(std::string token) : token_(std::move(token)) {}
  grpc::Status ListAgents(grpc::ServerContext* context, const v1::ListAgentsRequest*,
                          v1::ListAgentsResponse*) override {
    const auto& metadata = context->client_metadata();
    auto it = metadata.find("authorization");
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(it == metadata.end() ? "(none)"
                                           : std::string(it->second.data(), it->second.size()));
    }
    absl::Status status = CheckBearerToken(metadata, token_);
    if (status.ok()) return grpc::Status::OK;
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                        std::string(status.message()));
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  const std::string token_;
  std::mutex mu_;
  std::vector<std::string> seen_;  // guarded by mu_
};

class GrpcLinkCallTest : public ::testing::Test {
 protected:
  // Starts the service on 127.0.0.1:0 as the coordinator configures its server.
  void Serve(const LinkSecurity& security, const std::string& token) {
    service_ = std::make_unique<TokenCheckingControl>(token);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", CoordinatorCredentials(security), &port);
    builder.RegisterService(service_.get());
    ConfigureCoordinatorServer(&builder);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // One ListAgents call on `channel`, bounded at 5 s.
  static grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = v1::Control::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ListAgentsResponse response;
    return stub->ListAgents(&context, v1::ListAgentsRequest(), &response);
  }
  grpc::Status Call(const LinkSecurity& security) {
    return Call(DialCoordinator(address_, security));
  }

  std::unique_ptr<TokenCheckingControl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(GrpcLinkCallTest, TheTokenGoesOnEveryCallAndTheServerChecksIt) {
  ASSERT_NO_FATAL_FAILURE(Serve(LinkSecurity{}, "s3cret"));
  grpc::Status without = Call(LinkSecurity{});
  EXPECT_EQ(without.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(absl::StrContains(without.error_message(), "--token-file"))
      << without.error_message();
  LinkSecurity wrong;
  wrong.token = "nope";
  grpc::Status refused = Call(wrong);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(refused.error_message(), "wrong token");
  LinkSecurity right;
  right.token = "s3cret";
  std::shared_ptr<grpc::Channel> channel = DialCoordinator(address_, right);
  for (int i = 0; i < 2; ++i) {
    grpc::Status ok = Call(channel);
    EXPECT_TRUE(ok.ok()) << ok.error_message();
  }
  EXPECT_EQ(service_->seen(),
            (std::vector<std::string>{"(none)", "Bearer nope", "Bearer s3cret", "Bearer s3cret"}));
}

TEST_F(GrpcLinkCallTest, AServerWithoutATokenTakesEveryCall) {
  ASSERT_NO_FATAL_FAILURE(Serve(LinkSecurity{}, ""));
  EXPECT_TRUE(Call(LinkSecurity{}).ok());
  LinkSecurity with_token;
  with_token.token = "s3cret";
  EXPECT_TRUE(Call(with_token).ok());
}

// A CA, a server and a client certificate it signed for 127.0.0.1, and a stranger's self-signed
// one, made once with openssl.
class GrpcLinkTlsTest : public GrpcLinkCallTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::MakeTempDir();
    const std::string script =
        "set -e; cd " + dir_ +
        "; ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'"
        "; openssl req -x509 $ec -days 1 -subj /CN=churnlab-test-ca -keyout ca.key -out ca.pem"
        "; echo subjectAltName=IP:127.0.0.1 > san.ext"
        "; for who in server client; do"
        "   openssl req $ec -subj /CN=$who -keyout $who.key -out $who.csr;"
        "   openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1"
        "     -extfile san.ext -out $who.pem;"
        " done"
        "; openssl req -x509 $ec -days 1 -subj /CN=stranger -keyout stranger.key"
        "   -out stranger.pem"
        "   -addext subjectAltName=IP:127.0.0.1";
    absl::StatusOr<testing::CommandResult> made =
        testing::RunCommand({"sh", "-c", script}, absl::Seconds(30));
    made_ok_ = made.ok() && made->exit_code == 0;
    if (!made_ok_) made_error_ = made.ok() ? made->output : made.status().ToString();
  }
  void SetUp() override {
    if (!made_ok_) GTEST_SKIP() << "openssl could not make the test certificates: " << made_error_;
  }
  static SecurityFlags Files(const char* cert, const char* key, const char* ca) {
    SecurityFlags f;
    if (*cert) f.tls_cert = dir_ + "/" + cert;
    if (*key) f.tls_key = dir_ + "/" + key;
    if (*ca) f.tls_ca = dir_ + "/" + ca;
    return f;
  }
  static LinkSecurity Load(const SecurityFlags& flags) {
    absl::StatusOr<LinkSecurity> loaded = LoadLinkSecurity(flags);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.value_or(LinkSecurity{});
  }

  static inline std::string dir_;
  static inline bool made_ok_ = false;
  static inline std::string made_error_;
};

TEST_F(GrpcLinkTlsTest, AClientTrustingTheCaGetsThroughAndAPlaintextOneDoesNot) {
  ASSERT_NO_FATAL_FAILURE(Serve(Load(Files("server.pem", "server.key", "")), "s3cret"));
  LinkSecurity client = Load(Files("", "", "ca.pem"));
  client.token = "s3cret";
  ASSERT_TRUE(client.tls());
  grpc::Status ok = Call(client);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  LinkSecurity plaintext;
  plaintext.token = "s3cret";
  EXPECT_EQ(Call(plaintext).error_code(), grpc::StatusCode::UNAVAILABLE);
  // Over TLS the token is still checked.
  client.token = "nope";
  EXPECT_EQ(Call(client).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(service_->seen(), (std::vector<std::string>{"Bearer s3cret", "Bearer nope"}));
}

TEST_F(GrpcLinkTlsTest, WithACaTheServerRequiresAClientCertificateItSigned) {
  ASSERT_NO_FATAL_FAILURE(Serve(Load(Files("server.pem", "server.key", "ca.pem")), ""));
  EXPECT_EQ(Call(Load(Files("", "", "ca.pem"))).error_code(), grpc::StatusCode::UNAVAILABLE);
  // A certificate the CA did not sign is refused like none at all.
  EXPECT_EQ(Call(Load(Files("stranger.pem", "stranger.key", "ca.pem"))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  grpc::Status mutual = Call(Load(Files("client.pem", "client.key", "ca.pem")));
  EXPECT_TRUE(mutual.ok()) << mutual.error_message();
  EXPECT_EQ(service_->seen().size(), 1u);  // the refused calls never reached the service
}

}  // namespace
}  // namespace churnlab
