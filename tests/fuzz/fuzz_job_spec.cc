// Fuzzes the job spec parser: any bytes through ParseJobSpec (UTF-8 check, YAML bounds,
// yaml-cpp, every section reader and the unknown-field explanations), and a spec that parses
// must write back (ToYaml) to text that parses again.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/spec/job_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const dtrain::StatusOr<dtrain::JobSpec> spec = dtrain::ParseJobSpec(text, "fuzz.yaml");
  if (!spec.ok()) return 0;
  const std::string again = dtrain::ToYaml(*spec);
  const dtrain::StatusOr<dtrain::JobSpec> reread =
      dtrain::ParseJobSpec(again, "fuzz-roundtrip.yaml");
  if (!reread.ok()) {
    std::fprintf(stderr, "ToYaml output does not parse again: %s\n---\n%s\n",
                 reread.status().ToString().c_str(), again.c_str());
    std::abort();
  }
  return 0;
}
