#include "runtime/coordinator/http/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>

#include "runtime/rpc/auth.h"

namespace dtrain::http {
namespace {

// Bounds a request: only GETs without bodies are served.
constexpr size_t kMaxRequestBytes = 64 << 10;
constexpr int kWorkerThreads = 4;

StatusOr<std::pair<std::string, int>> SplitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return InvalidArgument("HTTP listen address '" + address + "': expected host:port");
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port_text = address.substr(colon + 1);
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port_text) > 65535) {
    return InvalidArgument("HTTP listen address '" + address +
                           "': expected a port from 0 to 65535, got '" + port_text + "'");
  }
  return std::make_pair(host, std::stoi(port_text));
}

}  // namespace

HttpRoute Route(std::function<HttpResponse()> handler) {
  return {[handler = std::move(handler)](const std::vector<std::string>&) { return handler(); },
          true};
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address,
                                                        std::string token, HttpRoutes routes) {
  DTRAIN_ASSIGN_OR_RETURN(auto host_port, SplitAddress(address));
  if (token.empty() && !rpc::IsLoopbackAddress(address)) {
    // Without a token (insecure local-only mode) the data must not leave this machine.
    return InvalidArgument("HTTP listen address '" + address +
                           "': without a token only a loopback address (127.0.0.0/8, ::1, "
                           "localhost) may serve HTTP");
  }
  std::unique_ptr<HttpServer> http(new HttpServer());
  http->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *http->server_;
  server.set_payload_max_length(kMaxRequestBytes);
  server.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  // httplib's default adds SO_REUSEPORT, which lets a second server bind the same port and take
  // half the requests: keep only SO_REUSEADDR (a restart may reuse a port in TIME_WAIT).
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  for (auto& [path, route] : routes) {
    server.Get(path, [token, route = std::move(route)](const httplib::Request& request,
                                                       httplib::Response& response) {
      const std::string header = request.get_header_value("Authorization");
      const grpc::Status allowed =
          route.needs_token
              ? rpc::CheckBearer(token, request.has_header("Authorization") ? &header : nullptr)
              : grpc::Status::OK;
      if (!allowed.ok()) {
        response.status = 401;
        response.set_header("WWW-Authenticate", "Bearer");
        response.set_content(allowed.error_message() + "\n", "text/plain; charset=utf-8");
        return;
      }
      std::vector<std::string> captures;
      for (size_t i = 1; i < request.matches.size(); ++i) captures.push_back(request.matches[i]);
      HttpResponse made = route.handler(captures);
      response.status = made.status;
      response.set_header("Cache-Control", "no-store");
      response.set_content(made.body, made.content_type.c_str());
    });
  }
  const auto& [host, port] = host_port;
  const int bound = port == 0 ? server.bind_to_any_port(host.c_str())
                              : (server.bind_to_port(host.c_str(), port) ? port : -1);
  if (bound <= 0) {
    return Unavailable("cannot listen for HTTP on '" + address + "' (in use, or no such address)");
  }
  http->bound_address_ = host + ":" + std::to_string(bound);
  HttpServer* self = http.get();
  http->thread_ = std::thread([self] {
    self->server_->listen_after_bind();
    self->finished_ = true;
  });
  return http;
}

HttpServer::~HttpServer() {
  if (!thread_.joinable()) return;  // Start failed before serving
  // httplib's stop() does nothing before the accept loop runs: wait for it (or its end).
  while (!server_->is_running() && !finished_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server_->stop();
  thread_.join();
}

}  // namespace dtrain::http
