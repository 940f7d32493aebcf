// dtrain-worker: one process per rank, `mpirun -np N dtrain-worker job.yaml` (worker_main.h).
#include "workers/trainer/worker_main.h"

int main(int argc, char** argv) { return dtrain::trainer::WorkerMain(argc, argv); }
