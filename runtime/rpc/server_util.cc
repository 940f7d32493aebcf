#include "runtime/rpc/server_util.h"

#include <pthread.h>

#include "runtime/common/atomic_file.h"

namespace dtrain::rpc {

StatusOr<ServerAuth> PrepareServerAuth(const ServerSecurity& security,
                                       const std::string& listen_address) {
  ServerAuth auth;
  if (!security.insecure_local_only) {
    if (security.token_file.empty()) {
      return InvalidArgument(
          "a token file is required (--token-file) unless --insecure-local-only");
    }
    DTRAIN_ASSIGN_OR_RETURN(auth.token, LoadToken(security.token_file));
    // A short secret is guessable; clients only read it, so the server is where to refuse it.
    if (auth.token.size() < kMinServerTokenLength) {
      return InvalidArgument("token file '" + security.token_file + "': the token has " +
                             std::to_string(auth.token.size()) + " characters; a server needs " +
                             "at least " + std::to_string(kMinServerTokenLength) +
                             " (e.g. head -c 32 /dev/urandom | base64 > token)");
    }
  }
  DTRAIN_ASSIGN_OR_RETURN(auth.credentials, MakeServerCredentials(security, listen_address));
  return auth;
}

StopSignals::StopSignals() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int StopSignals::Wait() {
  int received = 0;
  sigwait(&signals_, &received);
  return received;
}

std::string BoundAddress(const std::string& listen_address, int port) {
  const std::string host = listen_address.substr(0, listen_address.rfind(':'));
  return host + ":" + std::to_string(port);
}

Status WritePortFile(const std::string& path, const std::string& bound) {
  Status written = WriteFileAtomically(path, bound + "\n");
  if (written.ok()) return written;
  return Status(written.code(), "cannot write port file: " + written.message());
}

}  // namespace dtrain::rpc
