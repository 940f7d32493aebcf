// The worker encodes TensorBoard's Event messages itself (it must not link libprotobuf): its
// bytes must equal what the project's Protobuf serializes from proto/tensorboard/event.proto,
// and parse back to the same fields.
#include "workers/trainer/tensorboard_event.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tensorboard/event.pb.h"

namespace dtrain::trainer {
namespace {

tensorboard::Event Scalar(double wall_time, int64_t step, const std::string& tag, float value) {
  tensorboard::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  tensorboard::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(value);
  return event;
}

TEST(TensorBoardEventTest, ScalarsEqualProtobufsBytes) {
  const struct {
    double wall_time;
    int64_t step;
    std::string tag;
    float value;
  } cases[] = {
      {1733400000.123456, 1, "train/loss", 0.6931f},
      {0.0, 0, "t", 0.0f},  // defaults left out, the oneof value kept
      {-0.0, -5, "negative/step", -1.5f},
      {1e9, std::numeric_limits<int64_t>::max(), std::string(300, 'x'), 3.4e38f},
      {2.5, 300, "nan", std::numeric_limits<float>::quiet_NaN()},
      {2.5, 7, "", std::numeric_limits<float>::infinity()},
  };
  for (const auto& c : cases) {
    const std::string ours = EncodeScalarEvent(c.wall_time, c.step, c.tag, c.value);
    EXPECT_EQ(ours, Scalar(c.wall_time, c.step, c.tag, c.value).SerializeAsString())
        << "tag '" << c.tag.substr(0, 20) << "' step " << c.step;
    tensorboard::Event parsed;
    ASSERT_TRUE(parsed.ParseFromString(ours));
    EXPECT_EQ(parsed.step(), c.step);
    ASSERT_EQ(parsed.summary().value_size(), 1);
    EXPECT_EQ(parsed.summary().value(0).tag(), c.tag);
    EXPECT_EQ(parsed.summary().value(0).value_case(), tensorboard::Summary::Value::kSimpleValue);
    if (!std::isnan(c.value)) {
      EXPECT_EQ(parsed.summary().value(0).simple_value(), c.value);
    }
  }
}

TEST(TensorBoardEventTest, FileVersionAndImagesEqualProtobufsBytes) {
  tensorboard::Event version;
  version.set_wall_time(1733400000.5);
  version.set_file_version("brain.Event:2");
  EXPECT_EQ(EncodeFileVersionEvent(1733400000.5, "brain.Event:2"), version.SerializeAsString());

  const std::string png("\x89PNG\r\n\x1a\n\0\0binary", 18);
  tensorboard::Event image;
  image.set_wall_time(12.25);
  image.set_step(42);
  tensorboard::Summary::Value* v = image.mutable_summary()->add_value();
  v->set_tag("samples/styled");
  v->mutable_image()->set_height(480);
  v->mutable_image()->set_width(640);
  v->mutable_image()->set_colorspace(3);
  v->mutable_image()->set_encoded_image_string(png);
  EXPECT_EQ(EncodeImageEvent(12.25, 42, "samples/styled", 480, 640, 3, png),
            image.SerializeAsString());
}

}  // namespace
}  // namespace dtrain::trainer
