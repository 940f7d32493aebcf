// Triplet loss with online mining (FaceNet, Schroff et al. 2015; batch-hard: Hermans et al.
// 2017), single-process and across ranks.
//
// For an anchor A, a positive P (same label, another sample) and a negative N (another label):
//   l(A, P, N) = max(|f(A) - f(P)|^2 - |f(A) - f(N)|^2 + margin, 0).
// Mining picks the triplets inside the batch, from the current distances:
//  - batch_hard: one triplet per anchor, its farthest positive and its nearest negative.
//  - semi_hard: one triplet per (anchor, positive) pair; the negative is the nearest one with
//    d(A,P) < d(A,N) < d(A,P) + margin, or, when there is none, the nearest negative overall.
// An anchor without a positive or without a negative forms no triplet. The loss of a batch is
// the mean over all its triplets (active or not: easy triplets count as zeros, so the loss
// shrinks as the batch gets easy); the fraction of triplets with a positive term is reported as
// "active". Mining is a selection: gradients flow through the chosen distances only.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_FACE_TRIPLET_TRIPLET_LOSS_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_FACE_TRIPLET_TRIPLET_LOSS_H_

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "runtime/comm/communicator.h"
#include "runtime/spec/tasks/face_triplet.h"

namespace dtrain::trainer {

// Squared Euclidean distances between the rows of a (n x d) and b (m x d): n x m. Computed as
// sum((a_i - b_j)^2), not |a|^2 + |b|^2 - 2ab: exact (no cancellation, never negative) and the
// same value whichever rows are computed together, so a rank mining its own anchors sees
// bit-identical distances to a single process mining all of them.
at::Tensor SquaredDistances(const at::Tensor& a, const at::Tensor& b);

struct TripletTerms {
  at::Tensor sum;        // scalar: sum of the triplets' l (differentiable)
  int64_t triplets = 0;  // triplets formed
  int64_t active = 0;    // of them with l > 0
};

// The triplets whose anchors are rows [anchor_begin, anchor_begin + anchor_count) of
// `embeddings` (n x d), mining positives and negatives among all n rows; `labels` has n int64
// entries. `sum` always depends on `embeddings`, also when no triplet forms.
TripletTerms MineTriplets(const at::Tensor& embeddings, const at::Tensor& labels,
                          int64_t anchor_begin, int64_t anchor_count, double margin,
                          TripletMining mining);

// How many triplets the anchors of `labels` form among themselves (a function of the labels
// alone, so every rank computes the global count from the gathered labels).
int64_t CountTriplets(const at::Tensor& labels, TripletMining mining);

// Single process: mean of l over all triplets of the batch (0 when none form).
at::Tensor TripletLoss(const at::Tensor& embeddings, const at::Tensor& labels, double margin,
                       TripletMining mining);

// All ranks' rows, rank-major (this rank's at offset rank * rows), every rank giving the same
// number of rows. Differentiable: the backward sums the incoming gradient over ranks and returns
// this rank's rows, so each rank's embeddings receive the gradient of every loss term they
// appear in, whichever rank computed the term. Collective in forward and backward (through host
// memory, so it works for CUDA tensors too); throws std::runtime_error when one fails.
at::Tensor AllGatherRows(comm::Communicator& comm, const at::Tensor& local);

struct TripletBatchLoss {
  at::Tensor loss;  // what Task::Loss returns (see below)
  int64_t triplets = 0;
  int64_t active = 0;  // this rank's anchors only
};

// The loss of one rank's batch for the trainer, which back-propagates loss / W and sums
// gradients over the W ranks.
//  - global scope (W > 1): embeddings and labels of all ranks are gathered (AllGatherRows); this
//    rank's anchors mine among the whole global batch; loss = W / T * (sum of l over this rank's
//    triplets), T = triplets of the global batch. The ranks' losses then average to the global
//    mean, and the summed gradient is exactly that of one process on the concatenated batch:
//    every term is computed once (by its anchor's rank), and AllGatherRows routes the gradient
//    of its positive and negative back to the ranks that own them.
//  - local scope, or W = 1: mean of l over the triplets mined inside this rank's batch.
// `comm` may be null (single process). Collective in global scope; throws when that fails.
TripletBatchLoss DistributedTripletLoss(comm::Communicator* comm, const at::Tensor& embeddings,
                                        const at::Tensor& labels, const LossSpec& loss);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_FACE_TRIPLET_TRIPLET_LOSS_H_
