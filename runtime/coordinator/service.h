// CoordinatorService: the dtrain.v1.Coordinator gRPC handlers. They validate and store
// submissions, read jobs back from the store and hand whatever involves running jobs or slots
// (admission, cancellation, live metrics, the cluster view) to the JobSupervisor. Dependencies
// are passed in, so tests call the handlers directly without a network.
//
// Thread-safety: handlers run concurrently on gRPC threads; the service itself holds no mutable
// state (the store and the supervisor are internally synchronised).
#ifndef DTRAIN_RUNTIME_COORDINATOR_SERVICE_H_
#define DTRAIN_RUNTIME_COORDINATOR_SERVICE_H_

#include <chrono>
#include <cstddef>
#include <map>
#include <string>

#include "dtrain/v1/coordinator.grpc.pb.h"
#include "runtime/coordinator/job_store.h"
#include "runtime/coordinator/path_policy.h"
#include "runtime/coordinator/supervisor.h"
#include "runtime/rpc/auth.h"

namespace dtrain::coordinator {

struct ServiceOptions {
  size_t max_spec_bytes = 1 << 20;
  // How often a following WatchJob looks for new events.
  std::chrono::milliseconds watch_poll_interval{200};
};

class CoordinatorService final : public dtrain::v1::Coordinator::Service {
 public:
  // `store` and `supervisor` are not owned and must outlive the service.
  CoordinatorService(ServiceOptions options, JobStore* store, JobSupervisor* supervisor,
                     PathPolicy paths, rpc::TokenAuthenticator auth);

  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::Job* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override;
  grpc::Status GetCluster(grpc::ServerContext* context, const v1::GetClusterRequest* request,
                          v1::Cluster* response) override;
  grpc::Status HoldJob(grpc::ServerContext* context, const v1::HoldJobRequest* request,
                       v1::Job* response) override;
  grpc::Status ReleaseJob(grpc::ServerContext* context, const v1::ReleaseJobRequest* request,
                          v1::Job* response) override;
  grpc::Status SetJobPriority(grpc::ServerContext* context,
                              const v1::SetJobPriorityRequest* request, v1::Job* response) override;
  grpc::Status SubmitJobArray(grpc::ServerContext* context,
                              const v1::SubmitJobArrayRequest* request,
                              v1::SubmitJobArrayResponse* response) override;
  grpc::Status GetRankLog(grpc::ServerContext* context, const v1::GetRankLogRequest* request,
                          v1::GetRankLogResponse* response) override;

 private:
  // `with_history`: read the job's transitions too (one more query per job).
  void ToJob(const JobRecord& record, v1::Job* out, bool with_history = true) const;
  // Validates a submission with `element`'s overrides over the request's, into the job to store
  // (INVALID_ARGUMENT naming the field, FAILED_PRECONDITION when it can never fit).
  grpc::Status PrepareJob(const v1::SubmitJobRequest* request,
                          const std::map<std::string, std::string>& element, NewJob* out) const;
  // Inserts a prepared job durably and queues it; returns its id.
  StatusOr<int64_t> StoreAndQueue(const NewJob& job);
  // A job as GetJob shows it, with its queue standing when PENDING.
  void ToJobWithStanding(const JobRecord& record, v1::Job* out) const;

  const ServiceOptions options_;
  JobStore* const store_;
  JobSupervisor* const supervisor_;
  const PathPolicy paths_;
  const rpc::TokenAuthenticator auth_;
};

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_SERVICE_H_
