#include "runtime/coordinator/http/coordinator_metrics.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "runtime/rpc/auth.h"

namespace dtrain::http {
namespace {

// Pages of ListJobs read per scrape at most (1000 jobs each): a bound on a scrape's cost.
constexpr int kMaxListPages = 100;
constexpr int kListPageSize = 1000;
constexpr auto kCallTimeout = std::chrono::seconds(10);

std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) rpc::AddToken(context.get(), token);
  context->set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  return context;
}

HttpResponse Unavailable(const std::string& call, const grpc::Status& status) {
  return {503, "text/plain; charset=utf-8", call + " failed: " + status.error_message() + "\n"};
}

std::string StateLabel(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

}  // namespace

const std::vector<double>& SchedulingLatencyBuckets() {
  static const std::vector<double> bounds = {0.1, 0.5, 1,    5,     15,    60,
                                             300, 900, 3600, 14400, 43200, 86400};
  return bounds;
}

HttpResponse CoordinatorMetricsPage(v1::Coordinator::StubInterface* stub, const std::string& token,
                                    const LatencyHistogram& rpc_latency) {
  std::map<std::string, double> by_state;
  for (int s = v1::JobState_MIN; s <= v1::JobState_MAX; ++s) {
    if (s != v1::JOB_STATE_UNSPECIFIED) by_state[StateLabel(static_cast<v1::JobState>(s))] = 0;
  }
  std::vector<double> waits;
  v1::ListJobsRequest request;
  request.set_page_size(kListPageSize);
  for (int page = 0; page < kMaxListPages; ++page) {
    v1::ListJobsResponse response;
    const grpc::Status status = stub->ListJobs(Context(token).get(), request, &response);
    if (!status.ok()) return Unavailable("ListJobs", status);
    for (const v1::Job& job : response.jobs()) {
      by_state[StateLabel(job.state())] += 1;
      if (job.started_ms() > 0 && job.submitted_ms() > 0) {
        waits.push_back(std::max<int64_t>(0, job.started_ms() - job.submitted_ms()) / 1000.0);
      }
    }
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  v1::Cluster cluster;
  const grpc::Status status =
      stub->GetCluster(Context(token).get(), v1::GetClusterRequest(), &cluster);
  if (!status.ok()) return Unavailable("GetCluster", status);

  std::string page;
  AppendGauge(&page, "dtrain_jobs", "Jobs in the coordinator's store by state.", "state", by_state);
  AppendGauge(&page, "dtrain_queue_length", "Pending jobs waiting for slots.", "",
              {{"", static_cast<double>(cluster.queue_length())}});
  AppendGauge(&page, "dtrain_slots", "Worker slots of the cluster.", "kind",
              {{"total", cluster.total_slots()},
               {"used", cluster.used_slots()},
               {"free", cluster.free_slots()}});
  AppendHistogram(&page, "dtrain_scheduling_latency_seconds",
                  "Time from submission to first start of every job that has started.", "",
                  SchedulingLatencyBuckets(),
                  {{"", MakeHistogram(SchedulingLatencyBuckets(), waits)}});
  AppendHistogram(&page, "dtrain_rpc_latency_seconds",
                  "Handling time of the coordinator's gRPC calls by method.", "method",
                  rpc_latency.bounds(), rpc_latency.Snapshot());
  return {200, kPrometheusContentType, std::move(page)};
}

}  // namespace dtrain::http
