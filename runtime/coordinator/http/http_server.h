// The HTTP side of a dtrain server (cpp-httplib, Debian libcpp-httplib-dev): GET routes served
// on their own port from a background thread, behind the same bearer token as the server's
// gRPC API ("Authorization: Bearer <token>"; rpc::CheckBearer's rule, constant-time). An empty
// token is the insecure local-only mode, as for gRPC.
#ifndef DTRAIN_RUNTIME_COORDINATOR_HTTP_HTTP_SERVER_H_
#define DTRAIN_RUNTIME_COORDINATOR_HTTP_HTTP_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/common/status.h"

namespace httplib {
class Server;
}

namespace dtrain::http {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// A GET route. `handler` receives the path pattern's captures (pattern: an ECMAScript regex over
// the whole path, as httplib matches) and runs on one of the server's threads, concurrently with
// others. Only a page that carries no data (the dashboard's HTML) may skip the token.
struct HttpRoute {
  std::function<HttpResponse(const std::vector<std::string>& captures)> handler;
  bool needs_token = true;
};
// A route whose handler takes no captures.
HttpRoute Route(std::function<HttpResponse()> handler);

// path pattern -> route
using HttpRoutes = std::map<std::string, HttpRoute>;

class HttpServer {
 public:
  // Listens on `address` ("host:port"; port 0 picks a free one) and serves `routes` until
  // destroyed. Errors name the address.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address, std::string token,
                                                     HttpRoutes routes);
  ~HttpServer();  // stops listening and joins the thread
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  const std::string& bound_address() const { return bound_address_; }

 private:
  HttpServer() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> finished_{false};  // the accept loop returned
  std::string bound_address_;
};

}  // namespace dtrain::http

#endif  // DTRAIN_RUNTIME_COORDINATOR_HTTP_HTTP_SERVER_H_
