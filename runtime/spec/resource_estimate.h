// ResourceEstimate: what a job will need, worked out from its spec alone, before anything runs:
// the model's parameter count, the memory one rank trains in, and the bytes a data generator
// would write. Torch-free, so the coordinator refuses an impossible job at submit time with the
// same figures the worker checks at start (resource_limits.h). Each figure carries the spec field
// a user lowers to shrink it, so a refusal names file:line:col.
//
// Figures are doubles: they are estimates, and an absurd spec (kernel_size: 2147483647) must
// give a huge number, never a wrapped-around small one.
#ifndef DTRAIN_RUNTIME_SPEC_RESOURCE_ESTIMATE_H_
#define DTRAIN_RUNTIME_SPEC_RESOURCE_ESTIMATE_H_

#include <string>

namespace dtrain {

struct OptimizerSpec;

struct ResourceEstimate {
  // Trainable parameters (float32 each), the field that drives them most and the largest layer
  // ("linear layer 1: 3072 x 2147483647 weights").
  double parameters = 0;
  std::string parameters_field;
  std::string parameters_detail;

  // Training memory of one rank: every parameter's weight, gradient, optimizer state and bucket
  // copy; the forward activations of a micro-batch and their gradients; the data set held in
  // memory (when the spec says how large it is).
  double bytes_per_parameter = 0;
  double activation_bytes_per_sample = 0;
  double batch_per_rank = 0;
  double data_bytes = 0;
  std::string memory_field;  // e.g. "train.batch_size" or "data.resolution"

  // Bytes a generator writes into data.path before training (0: nothing generated).
  double generated_bytes = 0;
  std::string generated_field;  // e.g. "data.generate_count"

  double MemoryBytesPerRank() const {
    return parameters * bytes_per_parameter + activation_bytes_per_sample * batch_per_rank +
           data_bytes;
  }
};

// Bytes of float32 state kept per parameter by the trainer with this optimizer: weight,
// gradient, the reducer's bucket copy, and the optimizer's own buffers (SGD momentum: 1, Adam: 2).
double BytesPerParameter(const OptimizerSpec& optimizer);

// Training keeps every forward activation for backward and gets a gradient of the same size.
constexpr double kActivationCopiesInTraining = 2.0;
constexpr double kFloatBytes = 4.0;

// The most bytes a PNG of this size takes as written by stb_image_write: raw pixels, a filter
// byte per row, deflate's stored-block overhead when nothing compresses, and the chunk headers.
double PngBytesUpperBound(double width, double height, double channels);

// Sets estimate->memory_field to the field a user lowers first when training does not fit: the
// part that dominates (parameters, data in memory, activations); for activations, the batch
// when it is large, else the input size.
void ChooseMemoryField(const std::string& batch_field, const std::string& input_field,
                       ResourceEstimate* estimate);

// Human-readable figures for messages: "1073741824", "2.3e+20"; "3.5 GiB (3758096384 bytes)".
std::string FormatCount(double n);
std::string FormatBytes(double bytes);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_RESOURCE_ESTIMATE_H_
