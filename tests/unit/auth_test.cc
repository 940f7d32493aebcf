// Token files, constant-time comparison, the bearer check (directly and over a real gRPC call on
// 127.0.0.1), which security combinations a server accepts, and loopback detection.
#include "runtime/rpc/auth.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>

#include "runtime/rpc/server_util.h"
#include "tests/support/temp_dir.h"

namespace dtrain::rpc {
namespace {

namespace fs = std::filesystem;

class AuthTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << content;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  dtrain::testing::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

// --- LoadToken -----------------------------------------------------------------------------

TEST_F(AuthTest, LoadTokenReadsTheTrimmedFirstLine) {
  auto token = LoadToken(Write("token", "  s3cret-Token_1 \t\nsecond line\n"));
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(*token, "s3cret-Token_1");
  auto stricter = LoadToken(Write("token400", "abc", 0400));
  ASSERT_TRUE(stricter.ok()) << stricter.status().ToString();
  EXPECT_EQ(*stricter, "abc");
}

TEST_F(AuthTest, LoadTokenMissingFileIsNotFound) {
  const std::string path = (dir_ / "nope").string();
  auto token = LoadToken(path);
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(token.status().message(), "token file '" + path + "' does not exist");
}

TEST_F(AuthTest, LoadTokenEmptyOrBlankFirstLineIsRejected) {
  for (const std::string content : {"", "   \n", "\nsecret\n"}) {
    const std::string path = Write("token", content);
    auto token = LoadToken(path);
    ASSERT_FALSE(token.ok()) << "content: '" << content << "'";
    EXPECT_EQ(token.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(token.status().message(), "token file '" + path + "' is empty");
  }
}

TEST_F(AuthTest, LoadTokenRejectsFilesOthersCanReadOrWrite) {
  const std::string path = Write("token", "secret\n", 0644);
  auto token = LoadToken(path);
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(token.status().message(), "token file '" + path +
                                          "' is readable by group or others (mode 0644); "
                                          "chmod 600 it");
  auto group_writable = LoadToken(Write("token2", "secret\n", 0620));
  ASSERT_FALSE(group_writable.ok());
  EXPECT_NE(group_writable.status().message().find("(mode 0620)"), std::string::npos);
  EXPECT_FALSE(LoadToken(Write("token3", "secret\n", 0601)).ok());
}

TEST_F(AuthTest, LoadTokenRejectsWhitespaceInsideAndNonRegularFiles) {
  auto spaced = LoadToken(Write("token", "two words\n"));
  ASSERT_FALSE(spaced.ok());
  EXPECT_NE(spaced.status().message().find("without whitespace"), std::string::npos);
  EXPECT_FALSE(LoadToken(Write("tab", "a\tb")).ok());

  fs::create_directories(dir_ / "adir");
  ::chmod((dir_ / "adir").c_str(), 0700);
  auto directory = LoadToken((dir_ / "adir").string());
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.status().message().find("is not a regular file"), std::string::npos);
}

// --- ConstantTimeEquals --------------------------------------------------------------------

TEST(ConstantTimeEqualsTest, TruthTable) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "Secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret1"));  // prefix of the other
  EXPECT_FALSE(ConstantTimeEquals("secret1", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_FALSE(ConstantTimeEquals("a", ""));
  EXPECT_FALSE(ConstantTimeEquals("ab", "ba"));
  // A shorter string must not compare equal to one padded with the zero bytes it is extended by.
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("a"), std::string_view("a\0", 2)));
  EXPECT_TRUE(ConstantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
}

// --- CheckBearer ---------------------------------------------------------------------------

void ExpectUnauthenticated(const grpc::Status& status, const std::string& message) {
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  EXPECT_EQ(status.error_message(), message);
}

TEST(CheckBearerTest, AcceptsOnlyTheExactBearerToken) {
  const std::string token = "s3cret";
  auto check = [&](const std::string& header) { return CheckBearer(token, &header); };
  EXPECT_TRUE(check("Bearer s3cret").ok());
  ExpectUnauthenticated(CheckBearer(token, nullptr), "missing authorization metadata");
  const std::string not_bearer = "authorization metadata is not 'Bearer <token>'";
  ExpectUnauthenticated(check(""), not_bearer);
  ExpectUnauthenticated(check("s3cret"), not_bearer);
  ExpectUnauthenticated(check("Basic s3cret"), not_bearer);
  // Issue 16 item 7: the scheme is case-insensitive (RFC 7235); the token is not.
  EXPECT_TRUE(check("bearer s3cret").ok());
  EXPECT_TRUE(check("BEARER s3cret").ok());
  ExpectUnauthenticated(check("Bearer S3CRET"), "invalid bearer token");
  ExpectUnauthenticated(check("Bearers3cret"), not_bearer);
  ExpectUnauthenticated(check("Bearer"), not_bearer);
  ExpectUnauthenticated(check("Bearer "), not_bearer);
  ExpectUnauthenticated(check("Bearer  s3cret"), "invalid bearer token");  // two spaces
  ExpectUnauthenticated(check("Bearer wrong"), "invalid bearer token");
  ExpectUnauthenticated(check("Bearer s3cre"), "invalid bearer token");    // prefix of token
  ExpectUnauthenticated(check("Bearer s3cret2"), "invalid bearer token");  // token is a prefix
  ExpectUnauthenticated(check("Bearer s3cret "), "invalid bearer token");
}

TEST(CheckBearerTest, InsecureModeAllowsEverything) {
  const std::string anything = "Basic whatever";
  EXPECT_TRUE(CheckBearer("", nullptr).ok());
  EXPECT_TRUE(CheckBearer("", &anything).ok());
  EXPECT_TRUE(TokenAuthenticator("").insecure());
  EXPECT_FALSE(TokenAuthenticator("t").insecure());
}

// --- TokenAuthenticator over a real call ---------------------------------------------------

// Answers every method by finishing with the authenticator's verdict on the call's metadata.
class AuthCheckingService : public grpc::CallbackGenericService {
 public:
  explicit AuthCheckingService(const TokenAuthenticator* authenticator)
      : authenticator_(authenticator) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      explicit Reactor(const grpc::Status& status) { Finish(status); }
      // The callback API hands ownership to the reactor until OnDone.
      void OnDone() override { delete this; }
    };
    return new Reactor(authenticator_->Check(*ctx));
  }

 private:
  const TokenAuthenticator* authenticator_;
};

// A server on 127.0.0.1 with a free port, shut down on destruction.
class TestServer {
 public:
  TestServer(const TokenAuthenticator* authenticator,
             std::shared_ptr<grpc::ServerCredentials> credentials)
      : service_(authenticator) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", std::move(credentials), &port_);
    builder.RegisterCallbackGenericService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~TestServer() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  bool started() const { return server_ != nullptr && port_ > 0; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  AuthCheckingService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// Calls an arbitrary method; `decorate` adds metadata to the call.
grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel,
                  const std::function<void(grpc::ClientContext*)>& decorate) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  decorate(&context);
  grpc::Slice slice(std::string("ping"));
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/dtrain.test.Auth/Ping", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  return done.get_future().get();
}

TEST_F(AuthTest, RoundTripAcceptsTheTokenAndRejectsEverythingElse) {
  auto credentials = MakeServerCredentials(
      ServerSecurity{Write("token", "s3cret\n"), false, "", ""}, "127.0.0.1:0");
  ASSERT_TRUE(credentials.ok()) << credentials.status().ToString();
  auto token = LoadToken((dir_ / "token").string());
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  const TokenAuthenticator authenticator(*token);
  TestServer server(&authenticator, *credentials);
  ASSERT_TRUE(server.started());

  auto channel_credentials = MakeChannelCredentials(ClientSecurity{});
  ASSERT_TRUE(channel_credentials.ok()) << channel_credentials.status().ToString();
  auto channel = grpc::CreateChannel(server.address(), *channel_credentials);

  grpc::Status ok = Call(channel, [](grpc::ClientContext* c) { AddToken(c, "s3cret"); });
  EXPECT_TRUE(ok.ok()) << ok.error_code() << ": " << ok.error_message();
  ExpectUnauthenticated(Call(channel, [](grpc::ClientContext*) {}),
                        "missing authorization metadata");
  ExpectUnauthenticated(Call(channel, [](grpc::ClientContext* c) { AddToken(c, ""); }),
                        "missing authorization metadata");
  ExpectUnauthenticated(Call(channel, [](grpc::ClientContext* c) { AddToken(c, "wrong"); }),
                        "invalid bearer token");
  ExpectUnauthenticated(Call(channel, [](grpc::ClientContext* c) { AddToken(c, "s3cre"); }),
                        "invalid bearer token");
  ExpectUnauthenticated(
      Call(channel, [](grpc::ClientContext* c) { c->AddMetadata("authorization", "s3cret"); }),
      "authorization metadata is not 'Bearer <token>'");
  ExpectUnauthenticated(Call(channel,
                             [](grpc::ClientContext* c) {
                               AddToken(c, "s3cret");
                               AddToken(c, "s3cret");
                             }),
                        "authorization metadata is not 'Bearer <token>'");
}

TEST_F(AuthTest, RoundTripInInsecureLocalModeAllowsCallsWithoutToken) {
  ServerSecurity security;
  security.insecure_local_only = true;
  auto credentials = MakeServerCredentials(security, "127.0.0.1:0");
  ASSERT_TRUE(credentials.ok()) << credentials.status().ToString();
  const TokenAuthenticator authenticator("");
  TestServer server(&authenticator, *credentials);
  ASSERT_TRUE(server.started());
  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  grpc::Status status = Call(channel, [](grpc::ClientContext*) {});
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
}

// TLS with a throw-away self-signed certificate: checks the key/cert wiring end to end.
TEST_F(AuthTest, RoundTripOverTls) {
  const std::string key = (dir_ / "key.pem").string();
  const std::string cert = (dir_ / "cert.pem").string();
  const std::string command =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
      " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout '" +
      key + "' -out '" + cert + "' >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) GTEST_SKIP() << "openssl could not make a certificate";

  ServerSecurity security{Write("token", "s3cret"), false, cert, key};
  auto credentials = MakeServerCredentials(security, "0.0.0.0:7070");
  ASSERT_TRUE(credentials.ok()) << credentials.status().ToString();
  const TokenAuthenticator authenticator("s3cret");
  TestServer server(&authenticator, *credentials);
  ASSERT_TRUE(server.started());

  auto tls = MakeChannelCredentials(ClientSecurity{"s3cret", cert});
  ASSERT_TRUE(tls.ok()) << tls.status().ToString();
  auto channel = grpc::CreateChannel(server.address(), *tls);
  grpc::Status ok = Call(channel, [](grpc::ClientContext* c) { AddToken(c, "s3cret"); });
  EXPECT_TRUE(ok.ok()) << ok.error_code() << ": " << ok.error_message();
  ExpectUnauthenticated(Call(channel, [](grpc::ClientContext* c) { AddToken(c, "nope"); }),
                        "invalid bearer token");

  // A plaintext client cannot talk to the TLS server at all.
  auto plain = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  grpc::Status refused = Call(plain, [](grpc::ClientContext* c) { AddToken(c, "s3cret"); });
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
}

// --- MakeServerCredentials / MakeChannelCredentials ----------------------------------------

Status ServerError(const ServerSecurity& security, const std::string& address) {
  auto credentials = MakeServerCredentials(security, address);
  if (credentials.ok()) return Status::Ok();
  return credentials.status();
}

TEST_F(AuthTest, ServerCredentialCombinations) {
  ServerSecurity insecure;
  insecure.insecure_local_only = true;
  for (const std::string address : {"127.0.0.1:7070", "localhost:7070", "[::1]:7070"}) {
    EXPECT_TRUE(ServerError(insecure, address).ok()) << address;
  }
  for (const std::string address : {"0.0.0.0:7070", "10.1.2.3:7070", "[::]:7070", ":7070"}) {
    Status status = ServerError(insecure, address);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << address;
    EXPECT_EQ(status.message(),
              "insecure local-only mode must bind a loopback address, got '" + address + "'");
  }

  Status no_token = ServerError(ServerSecurity{}, "127.0.0.1:7070");
  EXPECT_EQ(no_token.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(no_token.message(),
            "a token file is required (--token-file) unless "
            "--insecure-local-only");

  const std::string token = Write("token", "s3cret-of-16-chars");
  EXPECT_TRUE(ServerError(ServerSecurity{token, false, "", ""}, "0.0.0.0:7070").ok());

  ServerSecurity insecure_tls = insecure;
  insecure_tls.tls_cert_file = "cert.pem";
  Status with_tls = ServerError(insecure_tls, "127.0.0.1:7070");
  EXPECT_EQ(with_tls.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(with_tls.message(),
            "--insecure-local-only cannot be combined with TLS (--tls-cert/--tls-key)");
  ServerSecurity insecure_token = insecure;
  insecure_token.token_file = token;
  EXPECT_EQ(ServerError(insecure_token, "127.0.0.1:7070").message(),
            "--insecure-local-only cannot be combined with --token-file; choose one");

  const std::string both =
      "TLS needs both a certificate and a key: set --tls-cert and "
      "--tls-key together";
  EXPECT_EQ(ServerError(ServerSecurity{token, false, "cert.pem", ""}, "h:1").message(), both);
  EXPECT_EQ(ServerError(ServerSecurity{token, false, "", "key.pem"}, "h:1").message(), both);

  const std::string missing = (dir_ / "missing.pem").string();
  const std::string key = Write("key.pem", "-----BEGIN PRIVATE KEY-----\nx\n");
  Status no_cert = ServerError(ServerSecurity{token, false, missing, key}, "h:1");
  EXPECT_EQ(no_cert.code(), StatusCode::kNotFound);
  EXPECT_EQ(no_cert.message(), "TLS certificate file '" + missing + "' does not exist");
  const std::string not_pem = Write("cert.pem", "hello");
  Status bad_cert = ServerError(ServerSecurity{token, false, not_pem, key}, "h:1");
  EXPECT_EQ(bad_cert.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_cert.message(),
            "TLS certificate file '" + not_pem + "' is not PEM (no '-----BEGIN' line)");
  Status no_key = ServerError(ServerSecurity{token, false, key, missing}, "h:1");
  EXPECT_EQ(no_key.message(), "TLS key file '" + missing + "' does not exist");
}

TEST_F(AuthTest, ChannelCredentials) {
  EXPECT_TRUE(MakeChannelCredentials(ClientSecurity{"t", ""}).ok());
  const std::string missing = (dir_ / "ca.pem").string();
  auto no_ca = MakeChannelCredentials(ClientSecurity{"t", missing});
  ASSERT_FALSE(no_ca.ok());
  EXPECT_EQ(no_ca.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(no_ca.status().message(), "TLS CA file '" + missing + "' does not exist");
}

// --- IsLoopbackAddress ---------------------------------------------------------------------

TEST(IsLoopbackAddressTest, Table) {
  for (const char* address : {"127.0.0.1:7070", "127.0.0.1", "127.1.2.3:1", "127.255.255.255:65535",
                              "localhost:7070", "localhost", "LocalHost:1", "[::1]:7070", "[::1]",
                              "::1", "[0:0:0:0:0:0:0:1]:7", "[::ffff:127.0.0.1]:7"}) {
    EXPECT_TRUE(IsLoopbackAddress(address)) << address;
  }
  for (const char* address : {"",
                              ":7070",
                              "0.0.0.0:7070",
                              "10.0.0.1:7070",
                              "128.0.0.1:1",
                              "127.0.0:1",
                              "127.0.0.1.5:1",
                              "127.0.0.256:1",
                              "127.0.0.1:port",
                              "127.0.0.1:",
                              "[::]:7070",
                              "[::1",
                              "[::1]x",
                              "[::2]:1",
                              "::",
                              "localhost.evil.com:1",
                              "mylocalhost:1",
                              "example.com:443",
                              "[::ffff:10.0.0.1]:1",
                              "unix:/tmp/socket"}) {
    EXPECT_FALSE(IsLoopbackAddress(address)) << address;
  }
}

// Issue 10: a 3-character token was accepted by the servers.
TEST_F(AuthTest, ServersRefuseTokensShorterThanSixteenCharacters) {
  ServerSecurity security;
  security.token_file = Write("short", "abc\n");
  auto auth = PrepareServerAuth(security, "127.0.0.1:0");
  ASSERT_FALSE(auth.ok());
  EXPECT_EQ(auth.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(auth.status().message(),
            "token file '" + security.token_file +
                "': the token has 3 characters; a server needs at least 16 (e.g. head -c 32 "
                "/dev/urandom | base64 > token)");
  security.token_file = Write("fifteen", std::string(15, 'x'));
  EXPECT_FALSE(PrepareServerAuth(security, "127.0.0.1:0").ok());
  security.token_file = Write("sixteen", std::string(16, 'x'));
  auto ok = PrepareServerAuth(security, "127.0.0.1:0");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->token, std::string(16, 'x'));
}

}  // namespace
}  // namespace dtrain::rpc
