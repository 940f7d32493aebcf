#include "runtime/cli/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "runtime/spec/yaml_values.h"

namespace dtrain::cli {
namespace {

constexpr const char* kConfigKeys[] = {"address", "store_address", "token_file", "tls_ca"};
// Suggest "did you mean" only for near misses.
constexpr size_t kMaxSuggestionDistance = 2;

std::optional<std::string> GetEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

std::string Position(const std::string& source, const YAML::Mark& mark) {
  // yaml-cpp marks are 0-based; a node built from nothing has none.
  const int line = mark.line >= 0 ? mark.line + 1 : 1;
  const int column = mark.column >= 0 ? mark.column + 1 : 1;
  return source + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string ExpectedKeys() {
  std::string keys;
  for (const char* key : kConfigKeys) keys += (keys.empty() ? "" : ", ") + std::string(key);
  return keys;
}

// Lexical only: `value` made absolute against `base_dir` ("" = leave relative), "~" and "~/..."
// against `home` when it is known.
std::string ResolvePath(const std::string& value, const std::filesystem::path& base_dir,
                        const std::optional<std::string>& home) {
  namespace fs = std::filesystem;
  if (home && (value == "~" || value.rfind("~/", 0) == 0)) {
    return (fs::path(*home) / value.substr(value.size() > 1 ? 2 : 1)).lexically_normal().string();
  }
  const fs::path path(value);
  if (path.is_absolute() || base_dir.empty()) return path.lexically_normal().string();
  return (base_dir / path).lexically_normal().string();
}

}  // namespace

ClientEnvironment ReadClientEnvironment() {
  ClientEnvironment env;
  env.address = GetEnv("DTRAIN_ADDRESS");
  env.store_address = GetEnv("DTRAIN_STORE_ADDRESS");
  env.token = GetEnv("DTRAIN_TOKEN");
  env.token_file = GetEnv("DTRAIN_TOKEN_FILE");
  env.config = GetEnv("DTRAIN_CONFIG");
  env.home = GetEnv("HOME");
  return env;
}

ConfigLocation LocateConfigFile(const ClientEnvironment& env) {
  if (env.config) return {*env.config, /*required=*/true};
  if (env.home) {
    return {(std::filesystem::path(*env.home) / kDefaultConfigRelativeToHome).string(),
            /*required=*/false};
  }
  return {};
}

StatusOr<ConfigFile> ParseConfigFile(const std::string& text, const std::string& source,
                                     const std::optional<std::string>& home) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(Position(source, e.mark) + ": " + e.msg);
  }
  ConfigFile config;
  config.path = source;
  if (root.IsNull()) return config;  // an empty file sets nothing
  if (!root.IsMap()) {
    return InvalidArgument(Position(source, root.Mark()) + ": expected a map with the keys " +
                           ExpectedKeys() + ", got " + yaml_values::Describe(root));
  }

  const std::filesystem::path base_dir = std::filesystem::path(source).parent_path();
  std::vector<std::string> problems;
  std::set<std::string> seen;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const YAML::Node key = it->first;  // copies: the iterator hands out temporaries
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      problems.push_back(Position(source, key.Mark()) + ": expected a key, got " +
                         yaml_values::Describe(key));
      continue;
    }
    const std::string name = key.Scalar();
    std::string* target = name == "address"         ? &config.address
                          : name == "store_address" ? &config.store_address
                          : name == "token_file"    ? &config.token_file
                          : name == "tls_ca"        ? &config.tls_ca
                                                    : nullptr;
    if (target == nullptr) {
      std::string what = "unknown key '" + yaml_values::Printable(name) + "'";
      const char* suggestion = nullptr;
      size_t best = kMaxSuggestionDistance + 1;
      for (const char* candidate : kConfigKeys) {
        const size_t d = yaml_values::EditDistance(name, candidate);
        if (d < best) {
          best = d;
          suggestion = candidate;
        }
      }
      if (suggestion != nullptr) what += std::string(" (did you mean '") + suggestion + "'?)";
      problems.push_back(Position(source, key.Mark()) + ": " + what +
                         "; expected one of: " + ExpectedKeys());
      continue;
    }
    if (!seen.insert(name).second) {
      problems.push_back(Position(source, key.Mark()) + ": " + name + ": duplicate key");
      continue;
    }
    // An empty value ("address:") has no useful mark of its own; blame the key.
    if (!value.IsScalar() || value.Scalar().empty()) {
      const YAML::Mark mark = value.IsNull() ? key.Mark() : value.Mark();
      problems.push_back(Position(source, mark) + ": " + name +
                         ": expected a non-empty string, got " + yaml_values::Describe(value));
      continue;
    }
    *target = value.Scalar();
    if (name != "address" && name != "store_address") {
      *target = ResolvePath(*target, base_dir, home);
    }
  }
  if (!problems.empty()) {
    std::string message;
    for (const std::string& p : problems) message += (message.empty() ? "" : "\n") + p;
    return InvalidArgument(std::move(message));
  }
  return config;
}

StatusOr<ConfigFile> LoadConfigFile(const ConfigLocation& location,
                                    const std::optional<std::string>& home) {
  if (location.path.empty()) return ConfigFile{};
  std::error_code ec;
  const bool exists = std::filesystem::exists(location.path, ec);
  if (!exists && !ec) {
    if (!location.required) return ConfigFile{};
    return NotFound("config file '" + location.path + "' (named by DTRAIN_CONFIG) does not exist");
  }
  if (std::filesystem::is_directory(location.path, ec)) {
    return InvalidArgument("config file '" + location.path + "' is a directory");
  }
  std::ifstream in(location.path, std::ios::binary);
  if (!in) {
    return FailedPrecondition("cannot read config file '" + location.path +
                              "': " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseConfigFile(text.str(), location.path, home);
}

namespace {

// The shared rules; the address comes from `env_address`, `config_address` or `default_address`
// unless --address is given.
StatusOr<ClientSettings> Resolve(const ClientFlags& flags, const ClientEnvironment& env,
                                 const ConfigFile& config,
                                 const std::optional<std::string>& env_address,
                                 const std::string& config_address,
                                 const std::string& default_address) {
  ClientSettings settings;
  settings.address = default_address;
  if (!flags.address.empty()) {
    settings.address = flags.address;
  } else if (env_address) {
    settings.address = *env_address;
  } else if (!config_address.empty()) {
    settings.address = config_address;
  }

  if (!flags.token.empty() && !flags.token_file.empty()) {
    return InvalidArgument("give either --token or --token-file, not both");
  }
  if (!flags.token.empty()) {
    settings.token_source = TokenSource::kFlag;
    settings.token = flags.token;
  } else if (!flags.token_file.empty()) {
    settings.token_source = TokenSource::kFlagFile;
    settings.token_file = flags.token_file;
  } else if (env.token && env.token_file) {
    return InvalidArgument(
        "both DTRAIN_TOKEN and DTRAIN_TOKEN_FILE are set; unset one (or pass --token / "
        "--token-file)");
  } else if (env.token) {
    settings.token_source = TokenSource::kEnv;
    settings.token = *env.token;
  } else if (env.token_file) {
    settings.token_source = TokenSource::kEnvFile;
    settings.token_file = *env.token_file;
  } else if (!config.token_file.empty()) {
    settings.token_source = TokenSource::kConfigFile;
    settings.token_file = config.token_file;
  }

  settings.tls_ca = !flags.tls_ca.empty() ? flags.tls_ca : config.tls_ca;

  // `!(x > 0)` also rejects NaN.
  if (!(flags.timeout_s > 0)) {
    std::ostringstream got;
    got << flags.timeout_s;
    return InvalidArgument("--timeout must be a positive number of seconds, got " + got.str());
  }
  settings.timeout_s = flags.timeout_s;
  settings.json = flags.json;
  return settings;
}

}  // namespace

StatusOr<ClientSettings> ResolveClientSettings(const ClientFlags& flags,
                                               const ClientEnvironment& env,
                                               const ConfigFile& config) {
  return Resolve(flags, env, config, env.address, config.address, kDefaultAddress);
}

StatusOr<ClientSettings> ResolveStoreClientSettings(const ClientFlags& flags,
                                                    const ClientEnvironment& env,
                                                    const ConfigFile& config) {
  return Resolve(flags, env, config, env.store_address, config.store_address, kDefaultStoreAddress);
}

std::string DescribeTokenSource(const ClientSettings& settings, const ConfigFile& config) {
  switch (settings.token_source) {
    case TokenSource::kNone:
      return "no token";
    case TokenSource::kFlag:
      return "--token";
    case TokenSource::kFlagFile:
      return "--token-file";
    case TokenSource::kEnv:
      return "DTRAIN_TOKEN";
    case TokenSource::kEnvFile:
      return "DTRAIN_TOKEN_FILE";
    case TokenSource::kConfigFile:
      return "token_file in " + config.path;
  }
  return "token";
}

}  // namespace dtrain::cli
