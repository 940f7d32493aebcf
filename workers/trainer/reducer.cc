#include "workers/trainer/reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <sstream>

#include "workers/trainer/tensor_comm.h"

namespace dtrain::trainer {
namespace {

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Fixed-size descriptor of one variable, exchanged between ranks to find mismatches.
constexpr size_t kDescriptorBytes = 160;

std::string Describe(const NamedTensor& v) {
  std::ostringstream out;
  out << "'" << v.name << "' " << v.tensor.sizes() << " " << v.tensor.dtype();
  std::string s = out.str();
  if (s.size() >= kDescriptorBytes) s.resize(kDescriptorBytes - 1);
  return s;
}

uint64_t Fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

class ReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  explicit ReadyHook(std::function<void()> on_ready) : on_ready_(std::move(on_ready)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    on_ready_();
    return outputs;
  }

 private:
  std::function<void()> on_ready_;
};

}  // namespace

Status VerifyConsistentAcrossRanks(comm::Communicator& comm,
                                   const std::vector<NamedTensor>& parameters,
                                   const std::vector<Bucket>& buckets) {
  const int world = comm.size();
  std::vector<std::string> descriptors;
  uint64_t params_hash = 1469598103934665603ull;
  for (const auto& p : parameters) {
    descriptors.push_back(Describe(p));
    params_hash = Fnv1a(descriptors.back(), params_hash);
  }
  uint64_t layout_hash = 1469598103934665603ull;
  for (const auto& b : buckets) {
    for (size_t v : b.variables) layout_hash = Fnv1a(std::to_string(v) + ",", layout_hash);
    layout_hash = Fnv1a("|", layout_hash);
  }
  std::vector<int64_t> mine = {
      static_cast<int64_t>(parameters.size()), static_cast<int64_t>(buckets.size()),
      static_cast<int64_t>(params_hash), static_cast<int64_t>(layout_hash)};
  std::vector<int64_t> all(mine.size() * world);
  DTRAIN_RETURN_IF_ERROR(comm.AllGather({mine.data(), mine.size(), comm::DataType::kInt64},
                                        {all.data(), all.size(), comm::DataType::kInt64}));
  bool params_equal = true, layout_equal = true;
  int64_t max_count = 0;
  for (int r = 0; r < world; ++r) {
    const int64_t* row = &all[r * mine.size()];
    max_count = std::max(max_count, row[0]);
    if (row[0] != all[0] || row[2] != all[2]) params_equal = false;
    if (row[1] != all[1] || row[3] != all[3]) layout_equal = false;
  }
  if (params_equal && layout_equal) return Status::Ok();

  if (params_equal) {
    std::string msg = "gradient bucket layout differs between ranks although parameters match:";
    for (int r = 0; r < world; ++r) {
      msg += " rank " + std::to_string(r) + " has " + std::to_string(all[r * mine.size() + 1]) +
             " buckets;";
    }
    return FailedPrecondition(msg +
                              " every rank must use the same distributed.bucket_mb and "
                              "distributed.first_bucket_mb");
  }

  // Exchange descriptors (padded to the largest count) so every rank can name the tensors.
  std::vector<char> local(static_cast<size_t>(max_count) * kDescriptorBytes, 0);
  for (size_t i = 0; i < descriptors.size(); ++i) {
    std::memcpy(&local[i * kDescriptorBytes], descriptors[i].data(), descriptors[i].size());
  }
  std::vector<char> gathered(local.size() * world);
  DTRAIN_RETURN_IF_ERROR(
      comm.AllGather({local.data(), local.size(), comm::DataType::kUInt8},
                     {gathered.data(), gathered.size(), comm::DataType::kUInt8}));
  auto descriptor = [&](int r, int64_t i) {
    return std::string(&gathered[(static_cast<size_t>(r) * max_count + i) * kDescriptorBytes]);
  };
  std::string msg =
      "model parameters differ between ranks (every rank must build the same model "
      "from the same spec):";
  for (int r = 1; r < world; ++r) {
    const int64_t n0 = all[0], nr = all[r * mine.size()];
    for (int64_t i = 0; i < std::max(n0, nr); ++i) {
      if (i >= n0 || i >= nr || descriptor(0, i) != descriptor(r, i)) {
        msg += "\n  parameter #" + std::to_string(i) + ": rank 0 has " +
               (i < n0 ? descriptor(0, i) : std::string("nothing")) + ", rank " +
               std::to_string(r) + " has " + (i < nr ? descriptor(r, i) : std::string("nothing"));
        if (n0 != nr) {
          msg += " (rank 0 has " + std::to_string(n0) + " parameters, rank " + std::to_string(r) +
                 " has " + std::to_string(nr) + ")";
        }
        break;
      }
    }
  }
  return FailedPrecondition(msg);
}

StatusOr<std::unique_ptr<Reducer>> Reducer::Create(comm::Communicator& comm,
                                                   std::vector<NamedTensor> parameters,
                                                   std::vector<NamedTensor> buffers,
                                                   const ReducerOptions& options) {
  std::vector<NamedTensor> variables;
  for (auto& p : parameters) {
    if (p.tensor.requires_grad()) variables.push_back(std::move(p));
  }
  std::vector<size_t> bytes, elements;
  for (const auto& v : variables) {
    if (v.tensor.scalar_type() != variables.front().tensor.scalar_type() ||
        v.tensor.device() != variables.front().tensor.device()) {
      return InvalidArgument("reducer: parameter '" + v.name +
                             "' differs in dtype or device from '" + variables.front().name +
                             "'; all parameters must share one dtype and device");
    }
    bytes.push_back(v.tensor.numel() * v.tensor.element_size());
    elements.push_back(v.tensor.numel());
  }
  std::vector<Bucket> buckets =
      ComputeBucketLayout(bytes, elements, options.first_bucket_bytes, options.bucket_bytes_cap);
  DTRAIN_RETURN_IF_ERROR(VerifyConsistentAcrossRanks(comm, variables, buckets));

  {
    torch::NoGradGuard no_grad;
    for (const auto& v : variables) {
      DTRAIN_RETURN_IF_ERROR(
          Broadcast(comm, v.tensor, 0).WithContext("broadcast of '" + v.name + "'"));
    }
    for (const auto& b : buffers) {
      DTRAIN_RETURN_IF_ERROR(
          Broadcast(comm, b.tensor, 0).WithContext("broadcast of '" + b.name + "'"));
    }
  }
  std::unique_ptr<Reducer> reducer(new Reducer(comm, std::move(variables), std::move(buffers),
                                               std::move(buckets), options.average_in_reducer,
                                               options.bf16_compression));
  reducer->InitBuckets();
  reducer->InstallHooks();
  return reducer;
}

Reducer::Reducer(comm::Communicator& comm, std::vector<NamedTensor> parameters,
                 std::vector<NamedTensor> buffers, std::vector<Bucket> buckets, bool average,
                 bool bf16_compression)
    : comm_(comm),
      reduce_op_(average ? comm::ReduceOp::kAvg : comm::ReduceOp::kSum),
      parameters_(std::move(parameters)),
      buffers_(std::move(buffers)),
      buckets_(std::move(buckets)),
      bf16_compression_(bf16_compression) {}

Reducer::~Reducer() {
  for (auto& handle : handles_) (void)handle->Wait();
  // The hooks capture `this`: remove them so a later backward cannot call into a dead reducer.
  for (auto& accumulator : grad_accumulators_) {
    auto& hooks = accumulator->post_hooks();
    hooks.erase(std::remove_if(hooks.begin(), hooks.end(),
                               [](const std::unique_ptr<torch::autograd::FunctionPostHook>& h) {
                                 return dynamic_cast<ReadyHook*>(h.get()) != nullptr;
                               }),
                hooks.end());
  }
}

void Reducer::InitBuckets() {
  torch::NoGradGuard no_grad;
  bucket_of_.assign(parameters_.size(), 0);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const at::Tensor& first = parameters_[buckets_[b].variables.front()].tensor;
    at::Tensor flat = torch::zeros({static_cast<int64_t>(buckets_[b].elements)}, first.options());
    int64_t offset = 0;
    for (size_t v : buckets_[b].variables) {
      at::Tensor& param = parameters_[v].tensor;
      // The gradient takes its parameter's strides (a channels-last weight gets a channels-last
      // gradient), so autograd's accumulation and the optimizer read both alike.
      at::Tensor slot = flat.narrow(0, offset, param.numel());
      at::Tensor view = param.is_non_overlapping_and_dense()
                            ? slot.as_strided(param.sizes(), param.strides())
                            : slot.view(param.sizes());
      if (param.grad().defined()) view.copy_(param.grad());
      param.mutable_grad() = view;  // autograd accumulates in place into the bucket
      bucket_of_[v] = b;
      offset += param.numel();
    }
    flat_.push_back(flat);
    if (bf16_compression_)
      wire_.push_back(torch::empty_like(flat, flat.options().dtype(at::kBFloat16)));
  }
  pending_.assign(buckets_.size(), 0);
  ready_.assign(parameters_.size(), 0);
}

void Reducer::InstallHooks() {
  for (size_t v = 0; v < parameters_.size(); ++v) {
    std::shared_ptr<torch::autograd::Node> accumulator =
        torch::autograd::impl::grad_accumulator(parameters_[v].tensor);
    accumulator->add_post_hook(std::make_unique<ReadyHook>([this, v] { MarkReady(v); }));
    grad_accumulators_.push_back(std::move(accumulator));
  }
}

void Reducer::PrepareForBackward(bool sync) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_ = sync;
  in_backward_ = true;
  next_to_launch_ = 0;
  launch_error_ = Status::Ok();
  for (size_t b = 0; b < buckets_.size(); ++b) pending_[b] = buckets_[b].variables.size();
  std::fill(ready_.begin(), ready_.end(), 0);
  if (record_ready_times_ && sync) ready_s_.assign(parameters_.size(), -1.0);
  timings_ = ReducerTimings();
  backward_start_ = NowSeconds();
}

void Reducer::MarkReady(size_t variable) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!in_backward_ || !sync_ || ready_[variable]) return;
  ready_[variable] = 1;
  if (record_ready_times_) ready_s_[variable] = NowSeconds() - backward_start_;
  --pending_[bucket_of_[variable]];
  LaunchReadyBucketsLocked();
}

void Reducer::LaunchReadyBucketsLocked() {
  while (next_to_launch_ < buckets_.size() && pending_[next_to_launch_] == 0) {
    Status s = LaunchBucketLocked(next_to_launch_++);
    if (!s.ok() && launch_error_.ok()) launch_error_ = s;
    ++timings_.buckets_launched_in_backward;
  }
}

Status Reducer::LaunchBucketLocked(size_t bucket) {
  if (bf16_compression_) {
    torch::NoGradGuard no_grad;
    wire_[bucket].copy_(flat_[bucket]);  // rounds to nearest even
  }
  DTRAIN_ASSIGN_OR_RETURN(comm::BufferRef buffer,
                          AsBuffer(bf16_compression_ ? wire_[bucket] : flat_[bucket]));
  handles_.push_back(comm_.AllReduceAsync(buffer, reduce_op_));
  return Status::Ok();
}

Status Reducer::FinishBackward() {
  std::vector<std::unique_ptr<comm::CollectiveHandle>> handles;
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_backward_ = false;
    if (!sync_) return Status::Ok();
    timings_.backward_compute_s = NowSeconds() - backward_start_;
    // Buckets with variables that got no gradient (unused in this forward) go now, in order.
    while (next_to_launch_ < buckets_.size()) {
      Status s = LaunchBucketLocked(next_to_launch_++);
      if (!s.ok() && launch_error_.ok()) launch_error_ = s;
    }
    handles.swap(handles_);
  }
  const double wait_start = NowSeconds();
  Status first_error = launch_error_;
  // The first failed bucket ends the step: the communicator is then poisoned, so the other
  // buckets cannot complete, and their handles return at once when `handles` is destroyed.
  for (size_t b = 0; b < handles.size() && first_error.ok(); ++b) {
    Status s = handles[b]->Wait();
    if (s.ok() && bf16_compression_) {
      torch::NoGradGuard no_grad;
      flat_[b].copy_(wire_[b]);
    }
    if (!s.ok()) {
      first_error = s.WithContext("gradient bucket " + std::to_string(b) + " (first variable '" +
                                  parameters_[buckets_[b].variables.front()].name + "')");
    }
  }
  timings_.wait_s = NowSeconds() - wait_start;
  return first_error;
}

void Reducer::RecordReadyTimes(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  record_ready_times_ = on;
  ready_s_.assign(parameters_.size(), -1.0);
}

BackwardProfile Reducer::last_profile() const { return {ready_s_, timings_.backward_compute_s}; }

std::vector<size_t> Reducer::variable_bytes() const {
  std::vector<size_t> bytes;
  for (const auto& p : parameters_) bytes.push_back(p.tensor.numel() * p.tensor.element_size());
  return bytes;
}

std::vector<size_t> Reducer::variable_elements() const {
  std::vector<size_t> elements;
  for (const auto& p : parameters_) elements.push_back(p.tensor.numel());
  return elements;
}

StatusOr<std::vector<std::pair<size_t, double>>> Reducer::ProbeAllReduce(size_t max_bytes) {
  constexpr size_t kSmallest = 16 << 10;
  constexpr int kWarmup = 2, kTimed = 5;
  const at::Tensor& like = parameters_.front().tensor;
  const size_t element_size = like.element_size();
  std::vector<std::pair<size_t, double>> samples;
  for (size_t bytes = kSmallest;; bytes *= 4) {
    bytes = std::min(bytes, std::max(max_bytes, kSmallest));
    at::Tensor buffer = torch::zeros({static_cast<int64_t>(bytes / element_size)}, like.options());
    DTRAIN_ASSIGN_OR_RETURN(comm::BufferRef ref, AsBuffer(buffer));
    std::vector<double> seconds;
    for (int i = 0; i < kWarmup + kTimed; ++i) {
      const double start = NowSeconds();
      DTRAIN_RETURN_IF_ERROR(
          comm_.AllReduce(ref, comm::ReduceOp::kSum)
              .WithContext("all-reduce probe of " + std::to_string(bytes) + " bytes"));
      if (i >= kWarmup) seconds.push_back(NowSeconds() - start);
    }
    std::nth_element(seconds.begin(), seconds.begin() + kTimed / 2, seconds.end());
    samples.push_back({bytes, seconds[kTimed / 2]});
    if (bytes >= max_bytes) break;
  }
  return samples;
}

Status Reducer::Rebucket(size_t first_bucket_bytes, size_t bucket_bytes_cap) {
  std::vector<Bucket> buckets = ComputeBucketLayout(variable_bytes(), variable_elements(),
                                                    first_bucket_bytes, bucket_bytes_cap);
  DTRAIN_RETURN_IF_ERROR(VerifyConsistentAcrossRanks(comm_, parameters_, buckets));
  std::lock_guard<std::mutex> lock(mu_);
  if (in_backward_ || !handles_.empty()) {
    return FailedPrecondition("reducer: cannot regroup gradient buckets during a backward pass");
  }
  buckets_ = std::move(buckets);
  flat_.clear();
  wire_.clear();
  InitBuckets();  // the new flat buffers take over the gradients the old ones held
  return Status::Ok();
}

void Reducer::ZeroGrad() {
  torch::NoGradGuard no_grad;
  for (auto& flat : flat_) flat.zero_();
}

Status Reducer::SyncBuffers() {
  torch::NoGradGuard no_grad;
  for (const auto& b : buffers_) {
    DTRAIN_RETURN_IF_ERROR(
        Broadcast(comm_, b.tensor, 0).WithContext("broadcast of '" + b.name + "'"));
  }
  return Status::Ok();
}

}  // namespace dtrain::trainer
