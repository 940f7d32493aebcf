#include "runtime/rpc/server_util.h"

#include <pthread.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

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
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << bound << "\n";
    if (!out.flush()) return Internal("cannot write port file '" + temporary + "'");
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) return Internal("cannot rename '" + temporary + "' to '" + path + "': " + ec.message());
  return Status::Ok();
}

}  // namespace dtrain::rpc
