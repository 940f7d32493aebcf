// The dtrain-worker program as a function, so that a binary with more tasks registered (tests,
// tools) runs exactly the worker's command line after its own registrations.
#ifndef DTRAIN_WORKERS_TRAINER_WORKER_MAIN_H_
#define DTRAIN_WORKERS_TRAINER_WORKER_MAIN_H_

namespace dtrain::trainer {

// Parses the command line, validates the spec and trains (or generates data). Returns the exit
// code: 0 success, 1 training failed, 2 bad usage or invalid spec, 3 non-finite loss.
int WorkerMain(int argc, char** argv);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_WORKER_MAIN_H_
