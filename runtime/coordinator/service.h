// CoordinatorService: the dtrain.v1.Coordinator gRPC handlers plus the control loop that starts,
// follows and finishes jobs. Dependencies are passed in (store, scheduler, launcher, path
// policy), so tests call the handlers directly without a network.
//
// Thread-safety: handlers run on gRPC threads, the control loop on its own thread; mu_ guards
// the scheduler and the table of running jobs. The store is internally synchronised.
#ifndef DTRAIN_RUNTIME_COORDINATOR_SERVICE_H_
#define DTRAIN_RUNTIME_COORDINATOR_SERVICE_H_

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dtrain/v1/coordinator.grpc.pb.h"
#include "runtime/coordinator/job_store.h"
#include "runtime/coordinator/launcher.h"
#include "runtime/coordinator/path_policy.h"
#include "runtime/coordinator/scheduler.h"
#include "runtime/rpc/auth.h"

namespace dtrain::coordinator {

struct ServiceOptions {
  std::string state_dir;  // jobs/<id>/spec.yaml, jobs/<id>/attempt-<n>/{hostfile,output.log,exit}
  std::chrono::milliseconds poll_interval{200};
  std::chrono::milliseconds cancel_grace{3000};
  size_t max_spec_bytes = 1 << 20;
  int max_events_per_tick = 500;  // per job, so one chatty job cannot stall the loop
};

class CoordinatorService final : public dtrain::v1::Coordinator::Service {
 public:
  CoordinatorService(ServiceOptions options, std::unique_ptr<JobStore> store,
                     std::unique_ptr<Scheduler> scheduler, std::unique_ptr<Launcher> launcher,
                     PathPolicy paths, rpc::TokenAuthenticator auth);
  ~CoordinatorService() override;

  // Recover() and then the control loop on its own thread.
  Status Start();
  // Finds jobs left RUNNING by an earlier coordinator: re-attaches live ones (and ones whose
  // exit was recorded while it was away); fails or retries vanished ones.
  Status Recover();
  // Stops the control loop; running jobs keep running (a restart re-attaches them).
  void Stop();

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

  // One pass of the control loop (exposed for tests): follow running jobs, then schedule.
  void Tick();

 private:
  struct Running {
    LaunchedJob launched;
    int attempt = 1;
    int64_t log_offset = 0;
    std::string partial_line;
  };

  // How a job whose processes ended is recorded: its transition, and the queue entry when it
  // is retried.
  struct Ending {
    TransitionRequest transition;
    std::optional<QueuedJob> requeue;
  };

  void Loop();
  void Wake();
  void FollowRunning();
  // Reads the job's new log lines into `events` (progress lines also update metrics_).
  void TailLog(int64_t id, Running& run, std::vector<NewEvent>* events);
  // The caller has claimed the ending (removed the job from running_, under mu_).
  Ending PlanEnding(int64_t id, int attempt, const ExitReport& report) const;
  // Commits the endings together, then frees their slots and requeues retried jobs.
  void RecordEndings(const std::vector<Ending>& endings);
  void ScheduleReady();
  // Writes the job's spec into its directory and starts the attempt.
  StatusOr<LaunchedJob> Launch(const JobRecord& job, const Placement& placement);
  void RecordProgress(int64_t id, const std::string& json_line);
  grpc::Status ToJob(const JobRecord& record, v1::Job* out) const;
  std::string JobDir(int64_t id) const;

  const ServiceOptions options_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<Launcher> launcher_;
  const PathPolicy paths_;
  const rpc::TokenAuthenticator auth_;

  mutable std::mutex mu_;
  std::unique_ptr<Scheduler> scheduler_;  // guarded by mu_
  std::map<int64_t, Running> running_;    // guarded by mu_
  // PENDING jobs as the scheduler needs them, mirrored from the store so a scheduling pass does
  // not read every queued job back from disk.
  std::map<int64_t, QueuedJob> pending_;                      // guarded by mu_
  std::map<int64_t, std::map<std::string, double>> metrics_;  // guarded by mu_
  std::condition_variable wake_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread loop_;
};

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_SERVICE_H_
