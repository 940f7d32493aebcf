#include "workers/trainer/tasks/face_triplet/triplet_loss.h"

#include <torch/torch.h>

#include <limits>
#include <stdexcept>
#include <string>

#include "workers/trainer/tensor_comm.h"

namespace dtrain::trainer {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr double kInf = std::numeric_limits<double>::infinity();

void ThrowIfError(const Status& status, const char* what) {
  if (!status.ok()) throw std::runtime_error(std::string(what) + ": " + status.ToString());
}

// Masks of an anchors x candidates label comparison.
struct PairMasks {
  at::Tensor positive;  // same label, not the anchor itself
  at::Tensor negative;  // another label
};

PairMasks MakeMasks(const at::Tensor& labels, int64_t anchor_begin, int64_t anchor_count) {
  const int64_t n = labels.size(0);
  const at::Tensor anchor_labels = labels.narrow(0, anchor_begin, anchor_count);
  const at::Tensor same = anchor_labels.unsqueeze(1).eq(labels.unsqueeze(0));
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(labels.device());
  const at::Tensor self =
      torch::arange(n, long_options)
          .unsqueeze(0)
          .eq(torch::arange(anchor_count, long_options).unsqueeze(1) + anchor_begin);
  return {same.logical_and(self.logical_not()), same.logical_not()};
}

// Autograd-aware all-gather of rows; see AllGatherRows in the header.
class AllGatherRowsFunction : public torch::autograd::Function<AllGatherRowsFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, at::Tensor local, int64_t comm_address) {
    auto& comm = *reinterpret_cast<comm::Communicator*>(comm_address);
    ctx->saved_data["comm"] = comm_address;
    ctx->saved_data["rows"] = local.size(0);
    // MPI moves host memory; embeddings are small, so a device tensor is staged on the host.
    const at::Tensor send = local.detach().to(torch::kCPU).contiguous();
    std::vector<int64_t> shape = send.sizes().vec();
    shape[0] *= comm.size();
    at::Tensor gathered = torch::empty(shape, send.options());
    auto send_buffer = AsBuffer(send);
    auto recv_buffer = AsBuffer(gathered);
    ThrowIfError(send_buffer.status(), "all-gather of embeddings");
    ThrowIfError(recv_buffer.status(), "all-gather of embeddings");
    ThrowIfError(comm.AllGather(*send_buffer, *recv_buffer), "all-gather of embeddings");
    return gathered.to(local.device());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto& comm = *reinterpret_cast<comm::Communicator*>(ctx->saved_data["comm"].toInt());
    const int64_t rows = ctx->saved_data["rows"].toInt();
    const at::Tensor& grad = grad_outputs[0];
    // Summing over ranks gives d(sum of all ranks' losses) / d(gathered rows).
    at::Tensor total = grad.to(torch::kCPU).contiguous().clone();
    ThrowIfError(AllReduce(comm, total, comm::ReduceOp::kSum), "all-reduce of embedding grads");
    return {total.narrow(0, comm.rank() * rows, rows).to(grad.device()), at::Tensor()};
  }
};

}  // namespace

at::Tensor SquaredDistances(const at::Tensor& a, const at::Tensor& b) {
  return (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1);
}

TripletTerms MineTriplets(const at::Tensor& embeddings, const at::Tensor& labels,
                          int64_t anchor_begin, int64_t anchor_count, double margin,
                          TripletMining mining) {
  const at::Tensor d =
      SquaredDistances(embeddings.narrow(0, anchor_begin, anchor_count), embeddings);
  at::Tensor positive_index, negative_index, valid;  // which distances the terms use
  {
    torch::NoGradGuard no_grad;
    const at::Tensor dd = d.detach();
    const PairMasks masks = MakeMasks(labels, anchor_begin, anchor_count);
    const at::Tensor has_negative = masks.negative.any(1);
    // The nearest negative of each anchor; an anchor without negatives gets index 0, masked out.
    const at::Tensor hardest_negative =
        dd.masked_fill(masks.negative.logical_not(), kInf).argmin(1);
    if (mining == TripletMining::kBatchHard) {
      positive_index = dd.masked_fill(masks.positive.logical_not(), -kInf).argmax(1).unsqueeze(1);
      negative_index = hardest_negative.unsqueeze(1);
      valid = masks.positive.any(1).logical_and(has_negative).unsqueeze(1);
    } else {
      // Every (anchor, positive) pair is a triplet: column p of the anchor's row.
      const int64_t n = d.size(1);
      positive_index = torch::arange(n, labels.options()).unsqueeze(0).expand({anchor_count, n});
      valid = masks.positive.logical_and(has_negative.unsqueeze(1));
      // Negative distances per anchor in ascending order (others at +inf, last): the nearest
      // negative beyond d(A,P) is the first entry > d(A,P); it is semi-hard when < d(A,P) +
      // margin.
      const auto [sorted, order] = dd.masked_fill(masks.negative.logical_not(), kInf)
                                       .sort(/*stable=*/true, /*dim=*/1, /*descending=*/false);
      const at::Tensor first_beyond =
          torch::searchsorted(sorted, dd, /*out_int32=*/false, /*right=*/true).clamp_max(n - 1);
      const at::Tensor candidate = sorted.gather(1, first_beyond);
      const at::Tensor semi_hard = candidate.gt(dd).logical_and(candidate.lt(dd + margin));
      negative_index = torch::where(semi_hard, order.gather(1, first_beyond),
                                    hardest_negative.unsqueeze(1).expand({anchor_count, n}));
    }
  }
  const at::Tensor terms =
      torch::relu(d.gather(1, positive_index) - d.gather(1, negative_index) + margin) *
      valid.to(d.scalar_type());
  TripletTerms out;
  out.sum = terms.sum();
  out.triplets = valid.sum().item<int64_t>();
  out.active = terms.detach().gt(0).sum().item<int64_t>();
  return out;
}

int64_t CountTriplets(const at::Tensor& labels, TripletMining mining) {
  torch::NoGradGuard no_grad;
  const PairMasks masks = MakeMasks(labels, 0, labels.size(0));
  const at::Tensor has_negative = masks.negative.any(1);
  if (mining == TripletMining::kBatchHard) {
    return masks.positive.any(1).logical_and(has_negative).sum().item<int64_t>();
  }
  return masks.positive.logical_and(has_negative.unsqueeze(1)).sum().item<int64_t>();
}

at::Tensor TripletLoss(const at::Tensor& embeddings, const at::Tensor& labels, double margin,
                       TripletMining mining) {
  TripletTerms terms = MineTriplets(embeddings, labels, 0, embeddings.size(0), margin, mining);
  return terms.sum / static_cast<double>(std::max<int64_t>(1, terms.triplets));
}

at::Tensor AllGatherRows(comm::Communicator& comm, const at::Tensor& local) {
  return AllGatherRowsFunction::apply(local, reinterpret_cast<int64_t>(&comm));
}

TripletBatchLoss DistributedTripletLoss(comm::Communicator* comm, const at::Tensor& embeddings,
                                        const at::Tensor& labels, const LossSpec& loss) {
  TripletBatchLoss out;
  const int64_t rows = embeddings.size(0);
  if (comm == nullptr || comm->size() == 1 || loss.mining_scope == MiningScope::kLocal) {
    TripletTerms terms = MineTriplets(embeddings, labels, 0, rows, loss.margin, loss.mining);
    out.loss = terms.sum / static_cast<double>(std::max<int64_t>(1, terms.triplets));
    out.triplets = terms.triplets;
    out.active = terms.active;
    return out;
  }
  const at::Tensor all_embeddings = AllGatherRows(*comm, embeddings);
  const at::Tensor local_labels = labels.to(torch::kCPU, torch::kLong).contiguous();
  at::Tensor all_labels = torch::empty({rows * comm->size()}, local_labels.options());
  auto send = AsBuffer(local_labels);
  auto recv = AsBuffer(all_labels);
  ThrowIfError(send.status(), "all-gather of labels");
  ThrowIfError(recv.status(), "all-gather of labels");
  ThrowIfError(comm->AllGather(*send, *recv), "all-gather of labels");
  all_labels = all_labels.to(labels.device());
  TripletTerms terms =
      MineTriplets(all_embeddings, all_labels, comm->rank() * rows, rows, loss.margin, loss.mining);
  const int64_t global_triplets = CountTriplets(all_labels, loss.mining);
  out.loss = terms.sum * (static_cast<double>(comm->size()) /
                          static_cast<double>(std::max<int64_t>(1, global_triplets)));
  out.triplets = terms.triplets;
  out.active = terms.active;
  return out;
}

}  // namespace dtrain::trainer
