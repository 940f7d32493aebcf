// The threads a rank computes with on the CPU.
//
// torch::set_num_threads sizes ATen's own pool (OpenMP), but not OpenBLAS's. Debian's LibTorch
// does its matrix products through the pthreads build of OpenBLAS, whose pool has a thread per
// core and spins in sched_yield while it waits for work. On the 2-core benchmark machine that
// spinner took a whole core at intra_op_threads 1, in dtrain and in PyTorch alike, and with 2
// ranks each rank's spinner competed with the other rank's compute (docs/BENCHMARKS.md §14).
#ifndef DTRAIN_WORKERS_TRAINER_COMPUTE_THREADS_H_
#define DTRAIN_WORKERS_TRAINER_COMPUTE_THREADS_H_

namespace dtrain::trainer {

// Sets ATen's intra-op threads to `threads` (>= 1) and, when the process has OpenBLAS loaded,
// OpenBLAS's as well (looked up at run time: a LibTorch on another BLAS has nothing to set).
// Returns whether OpenBLAS was set.
bool SetComputeThreads(int threads);

// OpenBLAS's thread count, or 0 when the process has no OpenBLAS.
int OpenBlasThreads();

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_COMPUTE_THREADS_H_
