// TensorBoard's Event messages encoded in the protobuf wire format (torch-free, and without
// libprotobuf: the worker must not link it, see tests/boundaries; Debian's LibTorch loads its
// own). The schema is proto/tensorboard/event.proto; tensorboard_event_test checks these bytes
// equal what the project's Protobuf serializes from that schema, field by field, and the
// end-to-end tests read them back with an independent reader.
#ifndef DTRAIN_WORKERS_TRAINER_TENSORBOARD_EVENT_H_
#define DTRAIN_WORKERS_TRAINER_TENSORBOARD_EVENT_H_

#include <cstdint>
#include <string>

namespace dtrain::trainer {

// Event{wall_time, file_version}: the first record of every event file.
std::string EncodeFileVersionEvent(double wall_time, const std::string& version);

// Event{wall_time, step, summary{value{tag, simple_value}}}.
std::string EncodeScalarEvent(double wall_time, int64_t step, const std::string& tag, float value);

// Event{wall_time, step, summary{value{tag, image{height, width, colorspace, png}}}}.
std::string EncodeImageEvent(double wall_time, int64_t step, const std::string& tag, int height,
                             int width, int colorspace, const std::string& png);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TENSORBOARD_EVENT_H_
