// Authentication and transport security shared by every dtrain gRPC server (coordinator,
// embedding store) and client (the dtrain CLI): bearer tokens compared in constant time, TLS when
// certificates are configured, and an explicit insecure mode that only binds loopback.
#ifndef DTRAIN_RUNTIME_RPC_AUTH_H_
#define DTRAIN_RUNTIME_RPC_AUTH_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>

#include "runtime/common/status.h"

namespace dtrain::rpc {

struct ServerSecurity {
  std::string token_file;            // bearer-token secret; required unless insecure_local_only
  bool insecure_local_only = false;  // no token, no TLS, loopback addresses only
  std::string tls_cert_file;         // PEM; TLS when both cert and key are set
  std::string tls_key_file;
};

// First line of the file, surrounding whitespace trimmed. Errors name the file: missing,
// unreadable, empty, or readable by group/others (a secret must be mode 0600 or stricter).
StatusOr<std::string> LoadToken(const std::string& path);

// Compares without an early exit, so timing does not reveal how much of a guess was right.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Checks the "authorization: Bearer <token>" metadata of a call.
class TokenAuthenticator {
 public:
  // An empty token means the server runs insecure (local only): every call is allowed.
  explicit TokenAuthenticator(std::string token) : token_(std::move(token)) {}
  // OK, or UNAUTHENTICATED naming what was wrong ("missing authorization metadata",
  // "authorization metadata is not 'Bearer <token>'", "invalid bearer token"). Takes the common
  // base of grpc::ServerContext (sync/async) and grpc::CallbackServerContext (callback API).
  grpc::Status Check(const grpc::ServerContextBase& context) const;
  bool insecure() const { return token_.empty(); }

 private:
  std::string token_;
};

// The rule Check() applies, on the value of the "authorization" metadata (nullptr when the call
// has none): an empty `expected_token` allows everything; otherwise the value must be exactly
// "Bearer " followed by the token (compared in constant time).
grpc::Status CheckBearer(std::string_view expected_token, const std::string* header_value_or_null);

// Validates the combination and builds credentials for `listen_address` ("host:port"):
// insecure_local_only needs a loopback host (127.0.0.0/8, ::1, localhost) and neither TLS files
// nor a token file; otherwise a token file is required (it is not read here: LoadToken it for
// the TokenAuthenticator); cert and key come together and must be readable PEM files. Errors are
// INVALID_ARGUMENT / NOT_FOUND naming the setting or file.
StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerSecurity& security, const std::string& listen_address);

struct ClientSecurity {
  std::string token;        // sent as "authorization: Bearer <token>" when non-empty
  std::string tls_ca_file;  // PEM roots; TLS when set, plaintext otherwise
};

StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientSecurity& security);
void AddToken(grpc::ClientContext* context, const std::string& token);

// True for 127.0.0.0/8, ::1, [::1] and localhost (the host part of "host:port").
bool IsLoopbackAddress(const std::string& host_port);

}  // namespace dtrain::rpc

#endif  // DTRAIN_RUNTIME_RPC_AUTH_H_
