// Prometheus /metrics over HTTP (issue 15 item 4): the text format (checked by Debian's
// `promtool check metrics`), the token on the HTTP port, the RPC latency interceptor, and the
// coordinator's page made through its public gRPC API.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/coordinator/http/coordinator_http.h"
#include "runtime/coordinator/http/coordinator_metrics.h"
#include "runtime/coordinator/http/dashboard.h"
#include "runtime/coordinator/http/http_server.h"
#include "runtime/coordinator/http/prometheus_text.h"
#include "runtime/coordinator/http/store_http.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain::http {
namespace {

using dtrain::testing::TempDir;

constexpr char kToken[] = "metrics-token-0123456789";

// `promtool check metrics` on `page`: its exit code and what it printed.
std::pair<int, std::string> Promtool(const std::string& page, const std::string& dir) {
  const std::string file = dir + "/page.txt";
  std::ofstream(file) << page;
  std::FILE* pipe = ::popen(("promtool check metrics < " + file + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(PrometheusTextTest, HistogramsAreCumulativeWithSumAndCount) {
  LatencyHistogram h({0.1, 1});
  h.Observe("/a", 0.05);
  h.Observe("/a", 0.5);
  h.Observe("/a", 5);
  std::string page;
  AppendHistogram(&page, "x_seconds", "Test.", "method", h.bounds(), h.Snapshot());
  EXPECT_EQ(page,
            "# HELP x_seconds Test.\n# TYPE x_seconds histogram\n"
            "x_seconds_bucket{method=\"/a\",le=\"0.1\"} 1\n"
            "x_seconds_bucket{method=\"/a\",le=\"1\"} 2\n"
            "x_seconds_bucket{method=\"/a\",le=\"+Inf\"} 3\n"
            "x_seconds_sum{method=\"/a\"} 5.55\n"
            "x_seconds_count{method=\"/a\"} 3\n");
}

TEST(PrometheusTextTest, LabelValuesAreEscaped) {
  std::string page;
  AppendGauge(&page, "g", "Help.", "name", {{"a\"b\\c\nd", 1}});
  EXPECT_EQ(page, "# HELP g Help.\n# TYPE g gauge\ng{name=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(HttpServerTest, RoutesNeedTheBearerToken) {
  auto server = HttpServer::Start("127.0.0.1:0", kToken,
                                  {{"/metrics", Route([] {
                                      return HttpResponse{200, "text/plain", "up 1\n"};
                                    })},
                                   {"/page",
                                    {[](const std::vector<std::string>&) {
                                       return HttpResponse{200, "text/html", "<p>no data</p>"};
                                     },
                                     /*needs_token=*/false}}});
  ASSERT_OK(server);
  const std::string bound = (*server)->bound_address();
  httplib::Client client(bound.substr(0, bound.rfind(':')),
                         std::stoi(bound.substr(bound.rfind(':') + 1)));
  auto anonymous = client.Get("/metrics");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  EXPECT_EQ(anonymous->get_header_value("WWW-Authenticate"), "Bearer");
  auto wrong = client.Get("/metrics", {{"Authorization", "Bearer not-the-token-at-all"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto allowed = client.Get("/metrics", {{"Authorization", std::string("Bearer ") + kToken}});
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->status, 200);
  EXPECT_EQ(allowed->body, "up 1\n");
  auto page = client.Get("/page");  // a route that carries no data needs no token
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  auto missing = client.Get("/nothing", {{"Authorization", std::string("Bearer ") + kToken}});
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(HttpServerTest, BadAddressesAreNamed) {
  EXPECT_EQ(HttpServer::Start("127.0.0.1", "", {}).status().message(),
            "HTTP listen address '127.0.0.1': expected host:port");
  EXPECT_EQ(HttpServer::Start("127.0.0.1:70000", "", {}).status().message(),
            "HTTP listen address '127.0.0.1:70000': expected a port from 0 to 65535, got '70000'");
  // Without a token (insecure local-only mode) only loopback may serve.
  EXPECT_EQ(HttpServer::Start("0.0.0.0:0", "", {}).status().code(), StatusCode::kInvalidArgument);
  auto first = HttpServer::Start("127.0.0.1:0", "", {});
  ASSERT_OK(first);
  // A second server on a port in use is refused (httplib's default SO_REUSEPORT would share it).
  auto second = HttpServer::Start((*first)->bound_address(), "", {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
}

// Answers ListJobs in two pages and GetCluster, checking the token as the real service does.
class FakeCoordinator final : public v1::Coordinator::Service {
 public:
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override {
    if (!Authorized(*context)) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "token");
    auto add = [&](int64_t id, v1::JobState state, int64_t submitted, int64_t started) {
      v1::Job* job = response->add_jobs();
      job->set_job_id(id);
      job->set_state(state);
      job->set_submitted_ms(submitted);
      job->set_started_ms(started);
    };
    if (request->page_token().empty()) {
      add(1, v1::SUCCEEDED, 1000, 1400);  // waited 0.4 s
      add(2, v1::RUNNING, 2000, 9000);    // 7 s
      response->set_next_page_token("2");
    } else {
      add(3, v1::PENDING, 3000, 0);
      add(4, v1::PENDING, 3500, 0);
    }
    return grpc::Status::OK;
  }
  grpc::Status GetCluster(grpc::ServerContext* context, const v1::GetClusterRequest*,
                          v1::Cluster* cluster) override {
    if (!Authorized(*context)) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "token");
    cluster->set_total_slots(4);
    cluster->set_used_slots(2);
    cluster->set_free_slots(2);
    cluster->set_queue_length(2);
    return grpc::Status::OK;
  }

 private:
  static bool Authorized(const grpc::ServerContext& context) {
    auto it = context.client_metadata().find("authorization");
    return it != context.client_metadata().end() &&
           std::string(it->second.data(), it->second.size()) == std::string("Bearer ") + kToken;
  }
};

TEST(CoordinatorMetricsTest, ThePageComesFromThePublicApiAndPassesPromtool) {
  TempDir temp;
  FakeCoordinator service;
  LatencyHistogram rpc_latency;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  builder.experimental().SetInterceptorCreators(RpcLatencyInterceptors(&rpc_latency));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto http = StartCoordinatorHttp("127.0.0.1:0", kToken, server.get(), &rpc_latency);
  ASSERT_OK(http);
  const std::string bound = (*http)->bound_address();
  httplib::Client client(bound.substr(0, bound.rfind(':')),
                         std::stoi(bound.substr(bound.rfind(':') + 1)));
  auto first = client.Get("/metrics", {{"Authorization", std::string("Bearer ") + kToken}});
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  EXPECT_EQ(first->get_header_value("Content-Type"), kPrometheusContentType);
  // The second scrape's histogram holds both scrapes' calls (each call is timed when it sends
  // its status, before the page is made): ListJobs twice per scrape, GetCluster once.
  auto second = client.Get("/metrics", {{"Authorization", std::string("Bearer ") + kToken}});
  ASSERT_TRUE(second);
  const std::string& page = second->body;
  for (const std::string line :
       {"dtrain_jobs{state=\"pending\"} 2", "dtrain_jobs{state=\"running\"} 1",
        "dtrain_jobs{state=\"succeeded\"} 1", "dtrain_jobs{state=\"failed\"} 0",
        "dtrain_jobs{state=\"cancelled\"} 0", "dtrain_queue_length 2",
        "dtrain_slots{kind=\"total\"} 4", "dtrain_slots{kind=\"used\"} 2",
        "dtrain_scheduling_latency_seconds_bucket{le=\"0.5\"} 1",
        "dtrain_scheduling_latency_seconds_bucket{le=\"5\"} 1",
        "dtrain_scheduling_latency_seconds_bucket{le=\"15\"} 2",
        "dtrain_scheduling_latency_seconds_sum 7.4", "dtrain_scheduling_latency_seconds_count 2",
        "dtrain_rpc_latency_seconds_count{method=\"/dtrain.v1.Coordinator/ListJobs\"} 4",
        "dtrain_rpc_latency_seconds_count{method=\"/dtrain.v1.Coordinator/GetCluster\"} 2"}) {
    EXPECT_NE(page.find(line + "\n"), std::string::npos) << "missing: " << line << "\n" << page;
  }
  const auto [code, lint] = Promtool(page, temp.path().string());
  EXPECT_EQ(code, 0) << lint << "\n(promtool is in Debian's prometheus package)";
  EXPECT_EQ(lint, "") << page;
  http->reset();
  server->Shutdown();
}

class FakeStore final : public v1::EmbeddingStore::Service {
 public:
  grpc::Status Stats(grpc::ServerContext*, const v1::StatsRequest*,
                     v1::StatsResponse* stats) override {
    stats->set_persons(3);
    stats->set_faces(7);
    stats->set_index_memory_bytes(4096);
    stats->set_wal_bytes(100);
    stats->set_snapshot_bytes(2048);
    return grpc::Status::OK;
  }
};

TEST(StoreMetricsTest, SizesAndRpcLatencyPassPromtool) {
  TempDir temp;
  FakeStore service;
  LatencyHistogram rpc_latency;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  builder.experimental().SetInterceptorCreators(RpcLatencyInterceptors(&rpc_latency));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto http = StartStoreHttp("127.0.0.1:0", "", server.get(), &rpc_latency);
  ASSERT_OK(http);
  const std::string bound = (*http)->bound_address();
  httplib::Client client(bound.substr(0, bound.rfind(':')),
                         std::stoi(bound.substr(bound.rfind(':') + 1)));
  auto response = client.Get("/metrics");  // insecure local-only mode: no token
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  for (const std::string line :
       {"dtrain_store_persons 3", "dtrain_store_faces 7", "dtrain_store_index_memory_bytes 4096",
        "dtrain_store_wal_bytes 100", "dtrain_store_snapshot_bytes 2048",
        "dtrain_rpc_latency_seconds_count{method=\"/dtrain.v1.EmbeddingStore/Stats\"} 1"}) {
    EXPECT_NE(response->body.find(line + "\n"), std::string::npos) << "missing: " << line << "\n"
                                                                   << response->body;
  }
  const auto [code, lint] = Promtool(response->body, temp.path().string());
  EXPECT_EQ(code, 0) << lint;
  EXPECT_EQ(lint, "") << response->body;
  http->reset();
  server->Shutdown();
}

// The dashboard's JSON views, made from the same fake coordinator's public API.
TEST(DashboardTest, OverviewListsJobsWithQueuePositionsAndTheCluster) {
  FakeCoordinator service;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = v1::Coordinator::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
  const HttpResponse response = OverviewJson(stub.get(), kToken);
  ASSERT_EQ(response.status, 200) << response.body;
  const nlohmann::json overview = nlohmann::json::parse(response.body);
  ASSERT_EQ(overview["jobs"].size(), 4u);
  EXPECT_EQ(overview["jobs"][1]["state"], "running");
  EXPECT_EQ(overview["jobs"][2]["queue_position"], 1);  // job 3, submitted before job 4
  EXPECT_EQ(overview["jobs"][3]["queue_position"], 2);
  EXPECT_FALSE(overview["jobs"][0].contains("queue_position"));
  EXPECT_EQ(overview["cluster"]["used_slots"], 2);
  EXPECT_EQ(OverviewJson(stub.get(), "wrong-token-0123456789").status, 401);
  server->Shutdown();
}

}  // namespace
}  // namespace dtrain::http
