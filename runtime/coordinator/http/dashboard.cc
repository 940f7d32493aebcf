#include "runtime/coordinator/http/dashboard.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <nlohmann/json.hpp>

#include "runtime/rpc/auth.h"

namespace dtrain::http {
namespace {

constexpr int kMaxListPages = 100;
constexpr int kListPageSize = 1000;
constexpr auto kCallTimeout = std::chrono::seconds(10);
// A job's event log read for its curve at most (progress and log lines together).
constexpr size_t kMaxEventsRead = 200000;

std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) rpc::AddToken(context.get(), token);
  context->set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  return context;
}

HttpResponse Json(const nlohmann::json& body) { return {200, "application/json", body.dump()}; }

HttpResponse RpcFailed(const std::string& call, const grpc::Status& status) {
  const int code = status.error_code() == grpc::StatusCode::NOT_FOUND         ? 404
                   : status.error_code() == grpc::StatusCode::UNAUTHENTICATED ? 401
                                                                              : 503;
  return {code, "application/json",
          nlohmann::json({{"error", call + " failed: " + status.error_message()}}).dump()};
}

std::string StateName(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

double Metric(const v1::Job& job, const std::string& key, double fallback = -1) {
  auto it = job.metrics().find(key);
  return it == job.metrics().end() ? fallback : it->second;
}

}  // namespace

HttpResponse OverviewJson(v1::Coordinator::StubInterface* stub, const std::string& token) {
  std::vector<v1::Job> jobs;
  v1::ListJobsRequest request;
  request.set_page_size(kListPageSize);
  for (int page = 0; page < kMaxListPages; ++page) {
    v1::ListJobsResponse response;
    const grpc::Status status = stub->ListJobs(Context(token).get(), request, &response);
    if (!status.ok()) return RpcFailed("ListJobs", status);
    for (const v1::Job& job : response.jobs()) jobs.push_back(job);
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  v1::Cluster cluster;
  const grpc::Status status =
      stub->GetCluster(Context(token).get(), v1::GetClusterRequest(), &cluster);
  if (!status.ok()) return RpcFailed("GetCluster", status);

  // Queue position of pending jobs in the scheduler's base order: priority, then submission
  // (aging and backfill can start a later job first; the page says so).
  std::vector<const v1::Job*> pending;
  for (const v1::Job& job : jobs) {
    if (job.state() == v1::PENDING) pending.push_back(&job);
  }
  std::stable_sort(pending.begin(), pending.end(), [](const v1::Job* a, const v1::Job* b) {
    if (a->priority() != b->priority()) return a->priority() > b->priority();
    return a->submitted_ms() < b->submitted_ms();
  });
  std::map<int64_t, int> queue_position;
  for (size_t i = 0; i < pending.size(); ++i) queue_position[pending[i]->job_id()] = i + 1;

  nlohmann::json out_jobs = nlohmann::json::array();
  for (const v1::Job& job : jobs) {
    nlohmann::json j = {{"job_id", job.job_id()},
                        {"name", job.name()},
                        {"state", StateName(job.state())},
                        {"ranks", job.ranks()},
                        {"priority", job.priority()},
                        {"attempt", job.attempt()},
                        {"max_attempts", job.max_attempts()},
                        {"submitted_ms", job.submitted_ms()},
                        {"reason", job.reason()},
                        {"epoch", Metric(job, "epoch")},
                        {"step", Metric(job, "step")},
                        {"loss", Metric(job, "loss")},
                        {"eta_s", Metric(job, "eta_s")}};
    if (job.state() == v1::FAILED) {
      j["failing_rank"] = job.failing_rank();
      j["exit_code"] = job.exit_code();
    }
    auto q = queue_position.find(job.job_id());
    if (q != queue_position.end()) j["queue_position"] = q->second;
    out_jobs.push_back(std::move(j));
  }
  nlohmann::json hosts = nlohmann::json::array();
  for (const auto& h : cluster.hosts()) {
    hosts.push_back({{"name", h.name()}, {"total", h.total()}, {"used", h.used()}});
  }
  return Json({{"jobs", out_jobs},
               {"cluster",
                {{"total_slots", cluster.total_slots()},
                 {"used_slots", cluster.used_slots()},
                 {"free_slots", cluster.free_slots()},
                 {"queue_length", cluster.queue_length()},
                 {"hosts", hosts}}}});
}

HttpResponse JobCurveJson(v1::Coordinator::StubInterface* stub, const std::string& token,
                          int64_t job_id) {
  v1::WatchJobRequest request;
  request.set_job_id(job_id);
  request.set_follow(false);
  auto context = Context(token);
  std::unique_ptr<grpc::ClientReaderInterface<v1::JobEvent>> reader =
      stub->WatchJob(context.get(), request);
  std::vector<std::pair<double, double>> points;
  nlohmann::json progress = nlohmann::json::object();
  v1::JobEvent event;
  size_t read = 0;
  while (read < kMaxEventsRead && reader->Read(&event)) {
    ++read;
    if (event.kind() != "progress") continue;
    const nlohmann::json p = nlohmann::json::parse(event.payload(), nullptr, false);
    if (!p.is_object() || p.value("event", "") != "step" || p.value("rank", 0) != 0) continue;
    if (p.contains("step") && p["step"].is_number() && p.contains("loss") &&
        p["loss"].is_number()) {
      points.emplace_back(p["step"].get<double>(), p["loss"].get<double>());
    }
    progress = nlohmann::json::object();
    for (const char* k : {"epoch", "epochs", "step_in_epoch", "steps_per_epoch", "eta_s"}) {
      if (p.contains(k) && p[k].is_number()) progress[k] = p[k];
    }
  }
  if (read >= kMaxEventsRead) context->TryCancel();
  const grpc::Status status = reader->Finish();
  if (!status.ok() && read < kMaxEventsRead) return RpcFailed("WatchJob", status);
  if (progress.contains("epochs") && progress.contains("steps_per_epoch") &&
      progress["epochs"].get<double>() > 0 && progress["steps_per_epoch"].get<double>() > 0) {
    const double total =
        progress["epochs"].get<double>() * progress["steps_per_epoch"].get<double>();
    const double done =
        (progress.value("epoch", 1.0) - 1) * progress["steps_per_epoch"].get<double>() +
        progress.value("step_in_epoch", 0.0);
    progress["fraction"] = std::clamp(done / total, 0.0, 1.0);
  }
  nlohmann::json out_points = nlohmann::json::array();
  const size_t stride = points.size() / kMaxCurvePoints + 1;
  for (size_t i = 0; i < points.size(); i += stride) {
    out_points.push_back({points[i].first, points[i].second});
  }
  if (!points.empty() && (points.size() - 1) % stride != 0) {
    out_points.push_back({points.back().first, points.back().second});
  }
  return Json({{"job_id", job_id}, {"points", out_points}, {"progress", progress}});
}

void AddDashboardRoutes(std::shared_ptr<v1::Coordinator::StubInterface> stub,
                        const std::string& token, HttpRoutes* routes) {
  (*routes)["/"] = {[](const std::vector<std::string>&) {
                      return HttpResponse{200, "text/html; charset=utf-8", DashboardHtml()};
                    },
                    /*needs_token=*/false};
  (*routes)["/api/overview"] = Route([stub, token] { return OverviewJson(stub.get(), token); });
  (*routes)[R"(/api/jobs/(\d{1,18})/curve)"] = {
      [stub, token](const std::vector<std::string>& captures) {
        return JobCurveJson(stub.get(), token, std::stoll(captures.at(0)));
      },
      true};
}

}  // namespace dtrain::http
