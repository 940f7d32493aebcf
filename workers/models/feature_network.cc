#include "workers/models/feature_network.h"

#include <algorithm>

namespace dtrain::models {

StatusOr<std::vector<int>> FeatureNetwork::ResolveTaps(
    const std::vector<std::string>& names) const {
  std::vector<int> indices;
  for (const std::string& name : names) {
    const auto it = std::find(tap_names().begin(), tap_names().end(), name);
    if (it == tap_names().end()) {
      std::string valid;
      for (const std::string& t : tap_names()) valid += (valid.empty() ? "" : ", ") + t;
      return InvalidArgument("unknown layer '" + name + "' of " + Describe() +
                             "; its layers are: " + valid);
    }
    indices.push_back(static_cast<int>(it - tap_names().begin()));
  }
  return indices;
}

}  // namespace dtrain::models
