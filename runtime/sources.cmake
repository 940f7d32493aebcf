# Source lists of the torch-free libraries, relative to runtime/. One list for both builds that
# compile them: runtime/CMakeLists.txt and the libFuzzer tree (tests/fuzz/), so a file added to a
# library is fuzzed too instead of breaking the fuzz link.
set(DTRAIN_COMMON_SOURCES common/status.cc common/atomic_file.cc common/directory_lock.cc
                          common/utf8.cc)
# The job spec: the core sections, the task registry and one file per task (spec/tasks/).
set(DTRAIN_SPEC_SOURCES spec/job_spec.cc spec/yaml_values.cc spec/spec_reader.cc
                        spec/task_spec.cc spec/overrides.cc
                        spec/resource_estimate.cc spec/resource_limits.cc
                        spec/sections/image_data.cc spec/sections/cnn_model.cc
                        spec/tasks/builtin_tasks.cc
                        spec/tasks/image_classification.cc spec/tasks/face_triplet.cc
                        spec/tasks/trigger_word.cc
                        spec/tasks/style_transfer.cc spec/tasks/yolo.cc)
# The image decoders the fuzzers reach (the rest of dtrain_data needs no fuzzing of its own).
set(DTRAIN_IMAGE_DECODER_SOURCES data/images/image_folder.cc data/images/idx.cc)
