#include "runtime/rpc/auth.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

namespace dtrain::rpc {
namespace {

constexpr char kAuthorizationKey[] = "authorization";  // gRPC metadata keys are lower-case
constexpr std::string_view kBearerPrefix = "Bearer ";
// Secrets and certificates are small; anything larger is a wrong path, not a secret.
constexpr size_t kMaxSecretFileBytes = 1 << 20;

// Owns a file descriptor for the duration of a read.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string Quoted(const std::string& path) { return "'" + path + "'"; }

// Reads a whole regular file. `what` names the setting in errors ("token file").
// On success `*mode` (when given) receives the permission bits.
StatusOr<std::string> ReadSmallFile(const std::string& what, const std::string& path,
                                    mode_t* mode = nullptr) {
  // O_NONBLOCK: a FIFO put where a secret should be must not hang startup.
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound(what + " " + Quoted(path) + " does not exist");
    return NotFound(what + " " + Quoted(path) + " cannot be read: " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return NotFound(what + " " + Quoted(path) + " cannot be read: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgument(what + " " + Quoted(path) + " is not a regular file");
  }
  if (static_cast<size_t>(st.st_size) > kMaxSecretFileBytes) {
    return InvalidArgument(what + " " + Quoted(path) + " is larger than " +
                           std::to_string(kMaxSecretFileBytes) + " bytes");
  }
  if (mode != nullptr) *mode = st.st_mode & 07777;
  std::string content;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return NotFound(what + " " + Quoted(path) + " cannot be read: " + std::strerror(errno));
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
    if (content.size() > kMaxSecretFileBytes) {
      return InvalidArgument(what + " " + Quoted(path) + " is larger than " +
                             std::to_string(kMaxSecretFileBytes) + " bytes");
    }
  }
  return content;
}

// A PEM file for grpc's TLS credentials: readable and at least looking like PEM, so that a
// wrong path fails here, naming the file, rather than as an opaque handshake error later.
StatusOr<std::string> ReadPemFile(const std::string& what, const std::string& path) {
  DTRAIN_ASSIGN_OR_RETURN(std::string pem, ReadSmallFile(what, path));
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return InvalidArgument(what + " " + Quoted(path) + " is not PEM (no '-----BEGIN' line)");
  }
  return pem;
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string OctalMode(mode_t mode) {
  char text[12];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode));
  return text;
}

grpc::Status Unauthenticated(const char* message) {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, message);
}

bool IsPort(std::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

// The host of "host:port", "[v6]:port", "host" or a bare IPv6 literal; nullopt when malformed.
std::optional<std::string> HostOf(const std::string& host_port) {
  if (!host_port.empty() && host_port.front() == '[') {
    const size_t close = host_port.find(']');
    if (close == std::string::npos) return std::nullopt;
    const std::string_view rest = std::string_view(host_port).substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !IsPort(rest.substr(1)))) return std::nullopt;
    return host_port.substr(1, close - 1);
  }
  const size_t colons = std::count(host_port.begin(), host_port.end(), ':');
  if (colons == 1) {
    const size_t colon = host_port.find(':');
    if (!IsPort(std::string_view(host_port).substr(colon + 1))) return std::nullopt;
    return host_port.substr(0, colon);
  }
  return host_port;  // no port, or an unbracketed IPv6 literal ("::1")
}

bool IsLocalhostName(const std::string& host) {
  constexpr std::string_view kLocalhost = "localhost";
  if (host.size() != kLocalhost.size()) return false;
  for (size_t i = 0; i < host.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(host[i])) != kLocalhost[i]) return false;
  }
  return true;
}

}  // namespace

StatusOr<std::string> LoadToken(const std::string& path) {
  const std::string what = "token file";
  if (path.empty()) return InvalidArgument("token file path is empty");
  mode_t mode = 0;
  DTRAIN_ASSIGN_OR_RETURN(std::string content, ReadSmallFile(what, path, &mode));
  if ((mode & 077) != 0) {
    return InvalidArgument("token file " + Quoted(path) + " is readable by group or others (mode " +
                           OctalMode(mode) + "); chmod 600 it");
  }
  const size_t newline = content.find('\n');
  const std::string_view token = Trim(
      std::string_view(content).substr(0, newline == std::string::npos ? content.size() : newline));
  if (token.empty()) return InvalidArgument("token file " + Quoted(path) + " is empty");
  // gRPC metadata values must be printable ASCII; a space would break "Bearer <token>".
  for (char c : token) {
    if (c <= ' ' || c > '~') {
      return InvalidArgument("token file " + Quoted(path) +
                             ": the token must be printable ASCII without whitespace");
    }
  }
  return std::string(token);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  // volatile keeps the compiler from turning the loop into an early-exit comparison.
  volatile size_t diff = a.size() ^ b.size();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | static_cast<size_t>(x ^ y);
  }
  return diff == 0;
}

grpc::Status CheckBearer(std::string_view expected_token, const std::string* header_value_or_null) {
  if (expected_token.empty()) return grpc::Status::OK;
  if (header_value_or_null == nullptr) return Unauthenticated("missing authorization metadata");
  const std::string_view value = *header_value_or_null;
  // The scheme is case-insensitive (RFC 7235 section 2.1): "bearer", "BEARER" and "Bearer".
  auto same_scheme = [](std::string_view given) {
    if (given.size() != kBearerPrefix.size()) return false;
    for (size_t i = 0; i < given.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(given[i])) !=
          std::tolower(static_cast<unsigned char>(kBearerPrefix[i]))) {
        return false;
      }
    }
    return true;
  };
  if (value.size() <= kBearerPrefix.size() || !same_scheme(value.substr(0, kBearerPrefix.size()))) {
    return Unauthenticated("authorization metadata is not 'Bearer <token>'");
  }
  if (!ConstantTimeEquals(value.substr(kBearerPrefix.size()), expected_token)) {
    return Unauthenticated("invalid bearer token");
  }
  return grpc::Status::OK;
}

grpc::Status TokenAuthenticator::Check(const grpc::ServerContextBase& context) const {
  if (insecure()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto range = metadata.equal_range(kAuthorizationKey);
  if (range.first == range.second) return CheckBearer(token_, nullptr);
  if (std::next(range.first) != range.second) {
    // Two credentials on one call is never legitimate; do not guess which one counts.
    return Unauthenticated("authorization metadata is not 'Bearer <token>'");
  }
  const std::string value(range.first->second.data(), range.first->second.size());
  return CheckBearer(token_, &value);
}

StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerSecurity& security, const std::string& listen_address) {
  const bool has_cert = !security.tls_cert_file.empty();
  const bool has_key = !security.tls_key_file.empty();
  if (security.insecure_local_only) {
    if (has_cert || has_key) {
      return InvalidArgument(
          "--insecure-local-only cannot be combined with TLS (--tls-cert/--tls-key)");
    }
    if (!security.token_file.empty()) {
      return InvalidArgument(
          "--insecure-local-only cannot be combined with --token-file; choose one");
    }
    if (!IsLoopbackAddress(listen_address)) {
      return InvalidArgument("insecure local-only mode must bind a loopback address, got '" +
                             listen_address + "'");
    }
    return grpc::InsecureServerCredentials();
  }
  if (security.token_file.empty()) {
    return InvalidArgument("a token file is required (--token-file) unless --insecure-local-only");
  }
  if (has_cert != has_key) {
    return InvalidArgument(
        "TLS needs both a certificate and a key: set --tls-cert and --tls-key together");
  }
  if (!has_cert) return grpc::InsecureServerCredentials();
  DTRAIN_ASSIGN_OR_RETURN(std::string cert,
                          ReadPemFile("TLS certificate file", security.tls_cert_file));
  DTRAIN_ASSIGN_OR_RETURN(std::string key, ReadPemFile("TLS key file", security.tls_key_file));
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({std::move(key), std::move(cert)});
  return grpc::SslServerCredentials(options);
}

StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientSecurity& security) {
  if (security.tls_ca_file.empty()) return grpc::InsecureChannelCredentials();
  DTRAIN_ASSIGN_OR_RETURN(std::string roots, ReadPemFile("TLS CA file", security.tls_ca_file));
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = std::move(roots);
  return grpc::SslCredentials(options);
}

void AddToken(grpc::ClientContext* context, const std::string& token) {
  if (!token.empty()) context->AddMetadata(kAuthorizationKey, std::string(kBearerPrefix) + token);
}

bool IsLoopbackAddress(const std::string& host_port) {
  const std::optional<std::string> host = HostOf(host_port);
  if (!host || host->empty()) return false;
  if (IsLocalhostName(*host)) return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host->c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host->c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;  // ::ffff:127.x.y.z
  }
  return false;
}

}  // namespace dtrain::rpc
