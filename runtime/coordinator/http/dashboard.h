// The coordinator's web dashboard: one static page (no data in it, so it needs no token) and
// the JSON views it polls, each made only through the coordinator's public gRPC API (ListJobs,
// GetCluster, WatchJob) on a stub, with the caller's token:
//   GET /                         the page (jobs table, live curves, cluster slots)
//   GET /api/overview             {"jobs": [...], "cluster": {...}}
//   GET /api/jobs/ID/curve        {"job_id", "points": [[step, loss]...], "progress": {...}}
// The page reads the token from its URL fragment (#token=...), which browsers never send to a
// server, and sends it as "Authorization: Bearer" on every API call.
#ifndef DTRAIN_RUNTIME_COORDINATOR_HTTP_DASHBOARD_H_
#define DTRAIN_RUNTIME_COORDINATOR_HTTP_DASHBOARD_H_

#include <memory>
#include <string>

#include "dtrain/v1/coordinator.grpc.pb.h"
#include "runtime/coordinator/http/http_server.h"

namespace dtrain::http {

// Points of a curve sent to the page at most (longer runs are thinned evenly).
constexpr size_t kMaxCurvePoints = 2000;

// Adds the dashboard's routes to `routes`; `stub` is shared by the handlers.
void AddDashboardRoutes(std::shared_ptr<v1::Coordinator::StubInterface> stub,
                        const std::string& token, HttpRoutes* routes);

HttpResponse OverviewJson(v1::Coordinator::StubInterface* stub, const std::string& token);
HttpResponse JobCurveJson(v1::Coordinator::StubInterface* stub, const std::string& token,
                          int64_t job_id);

// The page's HTML (dashboard_page.cc).
const std::string& DashboardHtml();

}  // namespace dtrain::http

#endif  // DTRAIN_RUNTIME_COORDINATOR_HTTP_DASHBOARD_H_
