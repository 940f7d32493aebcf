// What every dtrain gRPC server process does around its service, shared by the coordinator and
// the embedding store: turning its security settings into credentials and a token, waiting for
// SIGINT/SIGTERM, and announcing the bound address in a port file.
#ifndef DTRAIN_RUNTIME_RPC_SERVER_UTIL_H_
#define DTRAIN_RUNTIME_RPC_SERVER_UTIL_H_

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <memory>
#include <string>

#include "runtime/common/status.h"
#include "runtime/rpc/auth.h"

namespace dtrain::rpc {

struct ServerAuth {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::string token;  // "" in insecure local-only mode: TokenAuthenticator then allows every call
};

// The shortest bearer token a server accepts (16 characters of base64 are 96 bits).
inline constexpr size_t kMinServerTokenLength = 16;

// Validates `security` for `listen_address`, reads the token file (unless insecure_local_only)
// and builds the credentials. Errors name the flag or file (see MakeServerCredentials).
StatusOr<ServerAuth> PrepareServerAuth(const ServerSecurity& security,
                                       const std::string& listen_address);

// Blocks SIGINT and SIGTERM in the calling thread, so that every thread it starts afterwards
// inherits the mask and Wait() alone receives them; ignores SIGPIPE. Construct it first thing
// in a server's main function, before any thread exists.
class StopSignals {
 public:
  StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Blocks until SIGINT or SIGTERM arrives; returns the signal number.
  int Wait();

 private:
  sigset_t signals_;
};

// "host:port" of a server asked to listen on `listen_address` that got `port` (the address may
// name port 0).
std::string BoundAddress(const std::string& listen_address, int port);

// Writes "<bound>\n" to `path` atomically (runtime/common/atomic_file.h), so that a reader
// polling for the file never sees half of it.
Status WritePortFile(const std::string& path, const std::string& bound);

}  // namespace dtrain::rpc

#endif  // DTRAIN_RUNTIME_RPC_SERVER_UTIL_H_
