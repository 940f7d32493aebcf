// Overrides of a job spec's fields at submit time ("train.epochs=3" from `dtrain submit --set`),
// applied to the YAML text before it is validated, so an override is checked exactly like a
// value written in the file.
#ifndef DTRAIN_RUNTIME_SPEC_OVERRIDES_H_
#define DTRAIN_RUNTIME_SPEC_OVERRIDES_H_

#include <map>
#include <string>

#include "runtime/common/status.h"

namespace dtrain {

// Applies "a.b.c" -> "value" overrides to YAML text (values parsed as YAML scalars, missing maps
// created); errors name the override.
StatusOr<std::string> ApplyOverrides(const std::string& yaml_text,
                                     const std::map<std::string, std::string>& overrides);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_OVERRIDES_H_
