// Overrides of a job spec's fields at submit time ("train.epochs=3" from `dtrain submit --set`),
// applied to the YAML text before it is validated, so an override is checked exactly like a
// value written in the file.
#ifndef DTRAIN_RUNTIME_SPEC_OVERRIDES_H_
#define DTRAIN_RUNTIME_SPEC_OVERRIDES_H_

#include <map>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "runtime/spec/job_spec.h"
#include "runtime/spec/resource_limits.h"

namespace dtrain {

// Applies "a.b.c" -> "value" overrides to YAML text (values parsed as YAML scalars, missing maps
// created); errors name the override.
StatusOr<std::string> ApplyOverrides(const std::string& yaml_text,
                                     const std::map<std::string, std::string>& overrides);

// "key=value" command-line arguments (`--set`, repeatable) as overrides. INVALID_ARGUMENT for a
// missing '=', an empty key, or a key given twice; the value may be empty and contain '='.
StatusOr<std::map<std::string, std::string>> ParseOverrideArguments(
    const std::vector<std::string>& sets);

// LoadJobSpec with `overrides` applied to the file's text first (dtrain-worker --set); errors
// name `path` ("jobs/x.yaml:3:7: ...").
StatusOr<JobSpec> LoadJobSpecWithOverrides(const std::string& path,
                                           const std::map<std::string, std::string>& overrides,
                                           const ResourceLimits& limits);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_OVERRIDES_H_
