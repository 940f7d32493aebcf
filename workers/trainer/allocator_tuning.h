// glibc malloc settings for a training process.
//
// A training step allocates and frees the same large activation and gradient buffers every step.
// With glibc's defaults, freed memory at the top of the heap is returned to the kernel (trim) and
// large blocks are mmap'ed afresh, so every step page-faults its buffers in again: on the 2-core
// benchmark machine a third of the trainer's time went to the kernel, and keeping freed memory
// made training about 3.5x faster (docs/BENCHMARKS.md). Setting MALLOC_TRIM_THRESHOLD_ or
// MALLOC_MMAP_THRESHOLD_ in the environment keeps the user's choice instead.
#ifndef DTRAIN_WORKERS_TRAINER_ALLOCATOR_TUNING_H_
#define DTRAIN_WORKERS_TRAINER_ALLOCATOR_TUNING_H_

namespace dtrain::trainer {

// Call once at start-up, before the big allocations. Returns false if glibc refused a setting.
bool KeepFreedMemoryForReuse();

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_ALLOCATOR_TUNING_H_
