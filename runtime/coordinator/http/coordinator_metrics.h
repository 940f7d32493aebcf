// The coordinator's /metrics page, made only through its public gRPC API (ListJobs and
// GetCluster on a stub, normally an in-process channel to the server itself), plus the RPC
// latency histogram its interceptor fills:
//   dtrain_jobs{state}                      jobs in the store by state
//   dtrain_queue_length                     pending jobs waiting for slots
//   dtrain_slots{kind="total|used|free"}    the cluster's worker slots
//   dtrain_scheduling_latency_seconds       submit -> start of every job that has started
//   dtrain_rpc_latency_seconds{method}      handling time of each gRPC method
#ifndef DTRAIN_RUNTIME_COORDINATOR_HTTP_COORDINATOR_METRICS_H_
#define DTRAIN_RUNTIME_COORDINATOR_HTTP_COORDINATOR_METRICS_H_

#include <string>

#include "dtrain/v1/coordinator.grpc.pb.h"
#include "runtime/coordinator/http/http_server.h"
#include "runtime/coordinator/http/prometheus_text.h"

namespace dtrain::http {

// Buckets of the scheduling latency: a job may wait from milliseconds to days for slots.
const std::vector<double>& SchedulingLatencyBuckets();

// The page, or 503 naming the RPC that failed. `token` is sent as the caller's bearer token.
HttpResponse CoordinatorMetricsPage(v1::Coordinator::StubInterface* stub, const std::string& token,
                                    const LatencyHistogram& rpc_latency);

}  // namespace dtrain::http

#endif  // DTRAIN_RUNTIME_COORDINATOR_HTTP_COORDINATOR_METRICS_H_
