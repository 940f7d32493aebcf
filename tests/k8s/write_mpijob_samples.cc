// Writes the MPIJobs the Kubernetes backend generates for a spread of jobs (CPU and GPU, one
// and several workers, suspended, resumed, pinned to nodes) as <dir>/<case>.json, for
// validate_mpijobs.js to check against the MPI Operator's CRD schema.
//
//   write_mpijob_samples <dir>
#include <fstream>
#include <iostream>
#include <string>

#include "runtime/coordinator/launchers/kubernetes_mpijob.h"

namespace {

using dtrain::coordinator::MpiJobRequest;
using dtrain::coordinator::MpiJobTemplate;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: write_mpijob_samples <dir>\n";
    return 2;
  }
  MpiJobTemplate config;
  config.namespace_name = "dtrain";
  config.image = "registry.example/dtrain-worker:0.1";
  config.gpu_image = "registry.example/dtrain-worker-cuda:0.1";
  struct Case {
    const char* name;
    bool cuda;
    int workers;
    int slots;
    bool suspend;
    bool resume;
    bool pinned;
  };
  const Case cases[] = {
      {"cpu-one-worker", false, 1, 1, false, false, false},
      {"cpu-four-workers-two-slots", false, 4, 2, false, false, true},
      {"cpu-suspended", false, 2, 4, true, false, false},
      {"gpu-one-worker-eight-gpus", true, 1, 8, false, false, false},
      {"gpu-resumed-pinned", true, 2, 1, false, true, true},
      {"gpu-suspended", true, 3, 2, true, false, false},
  };
  int id = 1;
  for (const Case& c : cases) {
    MpiJobRequest r;
    r.job_id = id++;
    r.attempt = c.resume ? 2 : 1;
    r.spec_path = config.data_mount + "/state/jobs/" + std::to_string(r.job_id) + "/spec.yaml";
    r.cuda = c.cuda;
    r.workers = c.workers;
    r.slots_per_worker = c.slots;
    r.suspend = c.suspend;
    r.resume = c.resume;
    if (c.pinned) r.nodes = {"node-a", "node-b"};
    auto built = dtrain::coordinator::BuildMpiJob(config, r);
    if (!built.ok()) {
      std::cerr << c.name << ": " << built.status().ToString() << "\n";
      return 1;
    }
    const std::string path = std::string(argv[1]) + "/" + c.name + ".json";
    std::ofstream out(path);
    out << *built << "\n";
    if (!out) {
      std::cerr << "cannot write " << path << "\n";
      return 1;
    }
  }
  return 0;
}
