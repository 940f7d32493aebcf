// Client settings of the dtrain CLI: where the coordinator (or the embedding store, for
// `dtrain faces`) is and how to authenticate to it. Each setting is resolved in this order, the
// first that is set winning:
//   command-line flag > environment variable > config file > built-in default.
// Environment: DTRAIN_ADDRESS (coordinator), DTRAIN_STORE_ADDRESS (embedding store),
// DTRAIN_TOKEN, DTRAIN_TOKEN_FILE, DTRAIN_CONFIG (the config file).
// Config file: $DTRAIN_CONFIG, else ~/.config/dtrain/config.yaml (optional), a YAML map with the
// keys `address`, `store_address`, `token_file` and `tls_ca`; relative paths in it are relative
// to the file.
//
// Everything here except ReadClientEnvironment and LoadConfigFile is pure (no environment, no
// file system), so that the precedence rules can be tested directly.
#ifndef DTRAIN_RUNTIME_CLI_CONFIG_H_
#define DTRAIN_RUNTIME_CLI_CONFIG_H_

#include <optional>
#include <string>

#include "runtime/common/status.h"

namespace dtrain::cli {

constexpr char kDefaultAddress[] = "127.0.0.1:7070";
constexpr char kDefaultStoreAddress[] = "127.0.0.1:7071";
constexpr double kDefaultTimeoutSeconds = 30.0;
constexpr char kDefaultConfigRelativeToHome[] = ".config/dtrain/config.yaml";

// Global client options as given on the command line; empty = not given.
struct ClientFlags {
  std::string address;
  std::string token;
  std::string token_file;
  std::string tls_ca;
  double timeout_s = kDefaultTimeoutSeconds;
  bool json = false;
};

// The environment variables the client reads; an empty variable counts as unset.
struct ClientEnvironment {
  std::optional<std::string> address;        // DTRAIN_ADDRESS
  std::optional<std::string> store_address;  // DTRAIN_STORE_ADDRESS
  std::optional<std::string> token;          // DTRAIN_TOKEN
  std::optional<std::string> token_file;     // DTRAIN_TOKEN_FILE
  std::optional<std::string> config;         // DTRAIN_CONFIG
  std::optional<std::string> home;           // HOME
};

// Reads the variables above from the process environment.
ClientEnvironment ReadClientEnvironment();

// The contents of a config file; unset keys stay empty. Paths are already made absolute
// (relative to the file's directory, "~/" expanded).
struct ConfigFile {
  std::string path;  // where it was read from; empty when there was none
  std::string address;
  std::string store_address;
  std::string token_file;
  std::string tls_ca;
};

// Where the config file is looked for, and whether it must exist (true when named by
// DTRAIN_CONFIG). Empty path when neither DTRAIN_CONFIG nor HOME is set.
struct ConfigLocation {
  std::string path;
  bool required = false;
};
ConfigLocation LocateConfigFile(const ClientEnvironment& env);

// Parses config text. `source` names the file in messages ("config.yaml:3:1: unknown key
// 'adress' (did you mean 'address'?); expected one of: address, store_address, token_file,
// tls_ca"); relative
// paths are resolved against `source`'s directory, "~/" against `home`. Every problem is
// reported, one per line, as INVALID_ARGUMENT.
StatusOr<ConfigFile> ParseConfigFile(const std::string& text, const std::string& source,
                                     const std::optional<std::string>& home);

// Reads and parses the file at `location`. A missing optional file gives an empty ConfigFile;
// a missing required one is NOT_FOUND naming it and DTRAIN_CONFIG.
StatusOr<ConfigFile> LoadConfigFile(const ConfigLocation& location,
                                    const std::optional<std::string>& home);

// Where a token comes from once resolved.
enum class TokenSource { kNone, kFlag, kFlagFile, kEnv, kEnvFile, kConfigFile };

// The settings a client command runs with.
struct ClientSettings {
  std::string address = kDefaultAddress;
  // Exactly one of token / token_file is meaningful, per token_source: a literal token (flag or
  // DTRAIN_TOKEN) or a file to read with rpc::LoadToken.
  TokenSource token_source = TokenSource::kNone;
  std::string token;
  std::string token_file;
  std::string tls_ca;
  double timeout_s = kDefaultTimeoutSeconds;
  bool json = false;
};

// Applies the precedence rules. INVALID_ARGUMENT when both --token and --token-file are given,
// when both DTRAIN_TOKEN and DTRAIN_TOKEN_FILE are set (and no flag decides), or when the
// timeout is not positive.
StatusOr<ClientSettings> ResolveClientSettings(const ClientFlags& flags,
                                               const ClientEnvironment& env,
                                               const ConfigFile& config);
// The same rules for the embedding store (`dtrain faces`): the address comes from --address >
// DTRAIN_STORE_ADDRESS > store_address in the config file > kDefaultStoreAddress; the token and
// TLS settings are shared with the coordinator's.
StatusOr<ClientSettings> ResolveStoreClientSettings(const ClientFlags& flags,
                                                    const ClientEnvironment& env,
                                                    const ConfigFile& config);

// "--token-file /x", "DTRAIN_TOKEN", "token_file in /home/u/.config/dtrain/config.yaml", ... for
// messages about a token that could not be read.
std::string DescribeTokenSource(const ClientSettings& settings, const ConfigFile& config);

}  // namespace dtrain::cli

#endif  // DTRAIN_RUNTIME_CLI_CONFIG_H_
