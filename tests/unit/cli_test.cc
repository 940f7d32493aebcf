// The `dtrain` command-line client's pure parts: config file parsing, settings precedence,
// duration/age formatting, tables, job states, progress lines, JSON output, exit codes and
// --set overrides. Submit's exit codes are checked against an in-process fake coordinator.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/cli/client_commands.h"
#include "runtime/cli/config.h"
#include "runtime/cli/output.h"
#include "tests/support/temp_dir.h"

namespace dtrain::cli {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

// ================================================================ config file parsing

TEST(ParseConfigFileTest, ValidFileSetsEveryKey) {
  auto config = ParseConfigFile(
      "address: coord.example:7070\n"
      "token_file: /secrets/token\n"
      "tls_ca: /etc/ssl/ca.pem\n",
      "/etc/dtrain/config.yaml", std::nullopt);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->path, "/etc/dtrain/config.yaml");
  EXPECT_EQ(config->address, "coord.example:7070");
  EXPECT_EQ(config->token_file, "/secrets/token");
  EXPECT_EQ(config->tls_ca, "/etc/ssl/ca.pem");
}

TEST(ParseConfigFileTest, EmptyOrCommentOnlyFileSetsNothing) {
  for (const std::string text : {"", "# nothing here\n"}) {
    auto config = ParseConfigFile(text, "cfg.yaml", std::nullopt);
    ASSERT_TRUE(config.ok()) << config.status().message();
    EXPECT_EQ(config->path, "cfg.yaml");
    EXPECT_EQ(config->address, "");
    EXPECT_EQ(config->token_file, "");
    EXPECT_EQ(config->tls_ca, "");
  }
}

TEST(ParseConfigFileTest, RelativePathsAreResolvedAgainstTheFilesDirectory) {
  auto config = ParseConfigFile(
      "address: host:1\n"
      "token_file: secrets/../token\n"
      "tls_ca: ca.pem\n",
      "/home/u/.config/dtrain/config.yaml", "/home/u");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->token_file, "/home/u/.config/dtrain/token");
  EXPECT_EQ(config->tls_ca, "/home/u/.config/dtrain/ca.pem");
  // The address is not a path.
  EXPECT_EQ(config->address, "host:1");
}

TEST(ParseConfigFileTest, AbsolutePathsAreOnlyNormalized) {
  auto config =
      ParseConfigFile("token_file: /a/./b/../token\n", "/etc/dtrain/config.yaml", std::nullopt);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->token_file, "/a/token");
}

TEST(ParseConfigFileTest, TildeIsExpandedAgainstHome) {
  auto config = ParseConfigFile("token_file: ~/tokens/t\n", "/etc/dtrain/config.yaml", "/home/u");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->token_file, "/home/u/tokens/t");
}

TEST(ParseConfigFileTest, RelativePathStaysRelativeWhenTheSourceHasNoDirectory) {
  auto config = ParseConfigFile("token_file: token\n", "config.yaml", std::nullopt);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->token_file, "token");
}

TEST(ParseConfigFileTest, UnknownKeyNamesFileLineColumnAndSuggestion) {
  auto config = ParseConfigFile("address: a:1\nadress: b:2\n", "config.yaml", std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            "config.yaml:2:1: unknown key 'adress' (did you mean 'address'?); expected one of: "
            "address, store_address, token_file, tls_ca");
}

TEST(ParseConfigFileTest, UnknownKeyColumnFollowsIndentation) {
  auto config = ParseConfigFile("  address: a:1\n  tokenfile: t\n", "cfg.yaml", std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "cfg.yaml:2:3: unknown key 'tokenfile' (did you mean 'token_file'?); expected one of: "
            "address, store_address, token_file, tls_ca");
}

TEST(ParseConfigFileTest, UnknownKeyFarFromEveryKeyHasNoSuggestion) {
  auto config = ParseConfigFile("colour: red\n", "cfg.yaml", std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "cfg.yaml:1:1: unknown key 'colour'; expected one of: address, store_address, "
            "token_file, tls_ca");
}

TEST(ParseConfigFileTest, DuplicateKeyIsAnError) {
  auto config =
      ParseConfigFile("address: a:1\ntls_ca: /ca\naddress: b:2\n", "cfg.yaml", std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(), "cfg.yaml:3:1: address: duplicate key");
}

TEST(ParseConfigFileTest, MissingValueBlamesTheKey) {
  auto config = ParseConfigFile("address: a:1\ntls_ca:\n", "cfg.yaml", std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "cfg.yaml:2:1: tls_ca: expected a non-empty string, got nothing (null)");
}

TEST(ParseConfigFileTest, EmptyQuotedValueBlamesTheValue) {
  auto config = ParseConfigFile("token_file: \"\"\n", "cfg.yaml", std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "cfg.yaml:1:13: token_file: expected a non-empty string, got ''");
}

TEST(ParseConfigFileTest, NonScalarValueIsAnError) {
  auto config = ParseConfigFile("tls_ca: [a, b]\n", "cfg.yaml", std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "cfg.yaml:1:9: tls_ca: expected a non-empty string, got a list");
}

TEST(ParseConfigFileTest, EveryProblemIsReportedOnItsOwnLine) {
  auto config =
      ParseConfigFile("adress: a\naddress: b\naddress: c\ntls_ca:\n", "cfg.yaml", std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "cfg.yaml:1:1: unknown key 'adress' (did you mean 'address'?); expected one of: "
            "address, store_address, token_file, tls_ca\n"
            "cfg.yaml:3:1: address: duplicate key\n"
            "cfg.yaml:4:1: tls_ca: expected a non-empty string, got nothing (null)");
}

TEST(ParseConfigFileTest, RootMustBeAMap) {
  auto config = ParseConfigFile("- address\n- tls_ca\n", "cfg.yaml", std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            "cfg.yaml:1:1: expected a map with the keys address, store_address, token_file, "
            "tls_ca, got a list");
}

TEST(ParseConfigFileTest, YamlSyntaxErrorNamesTheFile) {
  auto config = ParseConfigFile("address: [unclosed\n", "cfg.yaml", std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message().rfind("cfg.yaml:", 0), 0u) << config.status().message();
}

// ================================================================ locating and loading

TEST(LocateConfigFileTest, DtrainConfigIsRequired) {
  ClientEnvironment env;
  env.config = "/etc/x.yaml";
  env.home = "/home/u";
  const ConfigLocation location = LocateConfigFile(env);
  EXPECT_EQ(location.path, "/etc/x.yaml");
  EXPECT_TRUE(location.required);
}

TEST(LocateConfigFileTest, HomeDefaultIsOptional) {
  ClientEnvironment env;
  env.home = "/home/u";
  const ConfigLocation location = LocateConfigFile(env);
  EXPECT_EQ(location.path, "/home/u/.config/dtrain/config.yaml");
  EXPECT_FALSE(location.required);
}

TEST(LocateConfigFileTest, NothingWithoutConfigOrHome) {
  const ConfigLocation location = LocateConfigFile(ClientEnvironment{});
  EXPECT_EQ(location.path, "");
  EXPECT_FALSE(location.required);
}

class LoadConfigFileTest : public ::testing::Test {
 protected:
  dtrain::testing::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

TEST_F(LoadConfigFileTest, RelativeTokenFileIsResolvedAgainstTheFilesDirectory) {
  const fs::path path = dir_ / "config.yaml";
  std::ofstream(path) << "address: h:1\ntoken_file: token\n";
  auto config = LoadConfigFile({path.string(), /*required=*/true}, std::nullopt);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->path, path.string());
  EXPECT_EQ(config->address, "h:1");
  EXPECT_EQ(config->token_file, (dir_ / "token").string());
}

TEST_F(LoadConfigFileTest, MissingOptionalFileIsEmpty) {
  auto config = LoadConfigFile({(dir_ / "none.yaml").string(), /*required=*/false}, std::nullopt);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->path, "");
  EXPECT_EQ(config->address, "");
}

TEST_F(LoadConfigFileTest, MissingRequiredFileIsNotFound) {
  const std::string path = (dir_ / "none.yaml").string();
  auto config = LoadConfigFile({path, /*required=*/true}, std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(config.status().message(),
            "config file '" + path + "' (named by DTRAIN_CONFIG) does not exist");
}

TEST_F(LoadConfigFileTest, DirectoryIsAnError) {
  auto config = LoadConfigFile({dir_.string(), /*required=*/true}, std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(), "config file '" + dir_.string() + "' is a directory");
}

TEST_F(LoadConfigFileTest, ParseErrorsNameThePath) {
  const fs::path path = dir_ / "config.yaml";
  std::ofstream(path) << "adress: h:1\n";
  auto config = LoadConfigFile({path.string(), /*required=*/false}, std::nullopt);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            path.string() +
                ":1:1: unknown key 'adress' (did you mean 'address'?); expected one of: address, "
                "store_address, token_file, tls_ca");
}

// ================================================================ environment

// Sets or unsets environment variables for one test and restores them afterwards.
class ScopedEnv {
 public:
  ScopedEnv() {
    for (const char* name : kNames) {
      const char* value = std::getenv(name);
      saved_[name] = value ? std::optional<std::string>(value) : std::nullopt;
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  void Set(const char* name, const char* value) { ASSERT_EQ(::setenv(name, value, 1), 0); }
  void Unset(const char* name) { ASSERT_EQ(::unsetenv(name), 0); }

  static constexpr const char* kNames[] = {"DTRAIN_ADDRESS", "DTRAIN_TOKEN", "DTRAIN_TOKEN_FILE",
                                           "DTRAIN_CONFIG", "HOME"};

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST(ReadClientEnvironmentTest, ReadsEveryVariable) {
  ScopedEnv env;
  env.Set("DTRAIN_ADDRESS", "env-host:9");
  env.Set("DTRAIN_TOKEN", "s3cret");
  env.Set("DTRAIN_TOKEN_FILE", "/run/token");
  env.Set("DTRAIN_CONFIG", "/etc/dtrain.yaml");
  env.Set("HOME", "/home/tester");
  const ClientEnvironment read = ReadClientEnvironment();
  EXPECT_EQ(read.address, std::optional<std::string>("env-host:9"));
  EXPECT_EQ(read.token, std::optional<std::string>("s3cret"));
  EXPECT_EQ(read.token_file, std::optional<std::string>("/run/token"));
  EXPECT_EQ(read.config, std::optional<std::string>("/etc/dtrain.yaml"));
  EXPECT_EQ(read.home, std::optional<std::string>("/home/tester"));
}

TEST(ReadClientEnvironmentTest, UnsetAndEmptyVariablesAreAbsent) {
  ScopedEnv env;
  env.Unset("DTRAIN_ADDRESS");
  env.Set("DTRAIN_TOKEN", "");
  env.Unset("DTRAIN_TOKEN_FILE");
  env.Set("DTRAIN_CONFIG", "");
  env.Unset("HOME");
  const ClientEnvironment read = ReadClientEnvironment();
  EXPECT_EQ(read.address, std::nullopt);
  EXPECT_EQ(read.token, std::nullopt);
  EXPECT_EQ(read.token_file, std::nullopt);
  EXPECT_EQ(read.config, std::nullopt);
  EXPECT_EQ(read.home, std::nullopt);
}

TEST(ReadClientEnvironmentTest, EnvironmentFeedsResolutionBelowFlags) {
  ScopedEnv env;
  env.Set("DTRAIN_ADDRESS", "env-host:9");
  env.Set("DTRAIN_TOKEN", "");  // empty: as if unset
  env.Set("DTRAIN_TOKEN_FILE", "/run/token");
  ConfigFile config;
  config.address = "cfg-host:1";
  config.token_file = "/cfg/token";

  auto from_env = ResolveClientSettings(ClientFlags{}, ReadClientEnvironment(), config);
  ASSERT_TRUE(from_env.ok()) << from_env.status().message();
  EXPECT_EQ(from_env->address, "env-host:9");
  EXPECT_EQ(from_env->token_source, TokenSource::kEnvFile);
  EXPECT_EQ(from_env->token_file, "/run/token");

  ClientFlags flags;
  flags.address = "flag-host:2";
  auto from_flag = ResolveClientSettings(flags, ReadClientEnvironment(), config);
  ASSERT_TRUE(from_flag.ok()) << from_flag.status().message();
  EXPECT_EQ(from_flag->address, "flag-host:2");
}

// ================================================================ settings precedence

ClientFlags AllFlags() {
  ClientFlags flags;
  flags.address = "flag-host:1";
  flags.tls_ca = "/flag/ca.pem";
  return flags;
}

ClientEnvironment AllEnv() {
  ClientEnvironment env;
  env.address = "env-host:2";
  return env;
}

ConfigFile AllConfig() {
  ConfigFile config;
  config.path = "/home/u/.config/dtrain/config.yaml";
  config.address = "cfg-host:3";
  config.token_file = "/cfg/token";
  config.tls_ca = "/cfg/ca.pem";
  return config;
}

TEST(ResolveClientSettingsTest, AddressFlagBeatsEnvBeatsConfigBeatsDefault) {
  ClientFlags flags = AllFlags();
  ClientEnvironment env = AllEnv();
  ConfigFile config = AllConfig();

  auto s = ResolveClientSettings(flags, env, config);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->address, "flag-host:1");

  flags.address.clear();
  s = ResolveClientSettings(flags, env, config);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->address, "env-host:2");

  env.address.reset();
  s = ResolveClientSettings(flags, env, config);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->address, "cfg-host:3");

  config.address.clear();
  s = ResolveClientSettings(flags, env, config);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->address, "127.0.0.1:7070");
}

TEST(ResolveClientSettingsTest, TlsCaFlagBeatsConfig) {
  ClientFlags flags = AllFlags();
  ConfigFile config = AllConfig();
  auto s = ResolveClientSettings(flags, ClientEnvironment{}, config);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->tls_ca, "/flag/ca.pem");

  flags.tls_ca.clear();
  s = ResolveClientSettings(flags, ClientEnvironment{}, config);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->tls_ca, "/cfg/ca.pem");

  config.tls_ca.clear();
  s = ResolveClientSettings(flags, ClientEnvironment{}, config);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->tls_ca, "");
}

TEST(ResolveClientSettingsTest, TokenFlagBeatsEverything) {
  ClientFlags flags;
  flags.token = "flag-token";
  ClientEnvironment env;
  env.token = "env-token";
  env.token_file = "/env/token";  // both env sources: a flag decides, no error
  auto s = ResolveClientSettings(flags, env, AllConfig());
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->token_source, TokenSource::kFlag);
  EXPECT_EQ(s->token, "flag-token");
  EXPECT_EQ(s->token_file, "");
}

TEST(ResolveClientSettingsTest, TokenFileFlagBeatsEverything) {
  ClientFlags flags;
  flags.token_file = "/flag/token";
  ClientEnvironment env;
  env.token = "env-token";
  auto s = ResolveClientSettings(flags, env, AllConfig());
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->token_source, TokenSource::kFlagFile);
  EXPECT_EQ(s->token_file, "/flag/token");
  EXPECT_EQ(s->token, "");
}

TEST(ResolveClientSettingsTest, EnvTokenBeatsConfigTokenFile) {
  ClientEnvironment env;
  env.token = "env-token";
  auto s = ResolveClientSettings(ClientFlags{}, env, AllConfig());
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->token_source, TokenSource::kEnv);
  EXPECT_EQ(s->token, "env-token");
  EXPECT_EQ(s->token_file, "");
}

TEST(ResolveClientSettingsTest, EnvTokenFileBeatsConfigTokenFile) {
  ClientEnvironment env;
  env.token_file = "/env/token";
  auto s = ResolveClientSettings(ClientFlags{}, env, AllConfig());
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->token_source, TokenSource::kEnvFile);
  EXPECT_EQ(s->token_file, "/env/token");
}

TEST(ResolveClientSettingsTest, ConfigTokenFileThenNone) {
  auto s = ResolveClientSettings(ClientFlags{}, ClientEnvironment{}, AllConfig());
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->token_source, TokenSource::kConfigFile);
  EXPECT_EQ(s->token_file, "/cfg/token");

  s = ResolveClientSettings(ClientFlags{}, ClientEnvironment{}, ConfigFile{});
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->token_source, TokenSource::kNone);
  EXPECT_EQ(s->token, "");
  EXPECT_EQ(s->token_file, "");
}

TEST(ResolveClientSettingsTest, BothTokenFlagsAreAnError) {
  ClientFlags flags;
  flags.token = "t";
  flags.token_file = "/t";
  auto s = ResolveClientSettings(flags, ClientEnvironment{}, ConfigFile{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(), "give either --token or --token-file, not both");
}

TEST(ResolveClientSettingsTest, BothTokenVariablesAreAnError) {
  ClientEnvironment env;
  env.token = "t";
  env.token_file = "/t";
  auto s = ResolveClientSettings(ClientFlags{}, env, AllConfig());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(),
            "both DTRAIN_TOKEN and DTRAIN_TOKEN_FILE are set; unset one (or pass --token / "
            "--token-file)");
}

TEST(ResolveClientSettingsTest, TimeoutAndJsonPassThrough) {
  ClientFlags flags;
  flags.timeout_s = 2.5;
  flags.json = true;
  auto s = ResolveClientSettings(flags, ClientEnvironment{}, ConfigFile{});
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->timeout_s, 2.5);
  EXPECT_TRUE(s->json);
}

TEST(ResolveClientSettingsTest, NonPositiveTimeoutIsAnError) {
  ClientFlags flags;
  flags.timeout_s = 0;
  auto s = ResolveClientSettings(flags, ClientEnvironment{}, ConfigFile{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(), "--timeout must be a positive number of seconds, got 0");

  flags.timeout_s = -1.5;
  s = ResolveClientSettings(flags, ClientEnvironment{}, ConfigFile{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "--timeout must be a positive number of seconds, got -1.5");

  flags.timeout_s = std::numeric_limits<double>::quiet_NaN();
  s = ResolveClientSettings(flags, ClientEnvironment{}, ConfigFile{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "--timeout must be a positive number of seconds, got nan");
}

// Issue 10: a 20-digit job id silently became INT64_MAX.
TEST(CheckJobIdTest, AcceptsPositiveInt64AndNamesEverythingElse) {
  EXPECT_EQ(CheckJobId("1"), "");
  EXPECT_EQ(CheckJobId("9223372036854775807"), "");
  const std::string range = " is not a job id (a whole number from 1 to 9223372036854775807)";
  EXPECT_EQ(CheckJobId("99999999999999999999"), "'99999999999999999999'" + range);
  EXPECT_EQ(CheckJobId("9223372036854775808"), "'9223372036854775808'" + range);
  EXPECT_EQ(CheckJobId("0"), "'0'" + range);
  EXPECT_EQ(CheckJobId("-3"), "'-3'" + range);
  EXPECT_EQ(CheckJobId("+3"), "'+3'" + range);
  EXPECT_EQ(CheckJobId("3x"), "'3x'" + range);
  EXPECT_EQ(CheckJobId(""), "''" + range);
}

TEST(DescribeTokenSourceTest, NamesEachSource) {
  const ConfigFile config = AllConfig();
  ClientSettings settings;
  EXPECT_EQ(DescribeTokenSource(settings, config), "no token");
  settings.token_source = TokenSource::kFlag;
  EXPECT_EQ(DescribeTokenSource(settings, config), "--token");
  settings.token_source = TokenSource::kFlagFile;
  EXPECT_EQ(DescribeTokenSource(settings, config), "--token-file");
  settings.token_source = TokenSource::kEnv;
  EXPECT_EQ(DescribeTokenSource(settings, config), "DTRAIN_TOKEN");
  settings.token_source = TokenSource::kEnvFile;
  EXPECT_EQ(DescribeTokenSource(settings, config), "DTRAIN_TOKEN_FILE");
  settings.token_source = TokenSource::kConfigFile;
  EXPECT_EQ(DescribeTokenSource(settings, config),
            "token_file in /home/u/.config/dtrain/config.yaml");
}

// ================================================================ durations and ages

TEST(FormatDurationTest, Seconds) {
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(999), "0s");
  EXPECT_EQ(FormatDuration(45 * kSecond), "45s");
  EXPECT_EQ(FormatDuration(59 * kSecond), "59s");
  EXPECT_EQ(FormatDuration(59 * kSecond + 999), "59s");
}

TEST(FormatDurationTest, Minutes) {
  EXPECT_EQ(FormatDuration(kMinute), "1m00s");
  EXPECT_EQ(FormatDuration(3 * kMinute + 12 * kSecond), "3m12s");
  EXPECT_EQ(FormatDuration(59 * kMinute + 59 * kSecond), "59m59s");
}

TEST(FormatDurationTest, Hours) {
  EXPECT_EQ(FormatDuration(kHour), "1h00m");
  EXPECT_EQ(FormatDuration(2 * kHour + 5 * kMinute + 30 * kSecond), "2h05m");
  EXPECT_EQ(FormatDuration(23 * kHour + 59 * kMinute), "23h59m");
}

TEST(FormatDurationTest, Days) {
  EXPECT_EQ(FormatDuration(kDay), "1d00h");
  EXPECT_EQ(FormatDuration(3 * kDay + 4 * kHour + 59 * kMinute), "3d04h");
  EXPECT_EQ(FormatDuration(123 * kDay), "123d00h");
}

TEST(FormatDurationTest, NegativeIsZero) {
  EXPECT_EQ(FormatDuration(-1), "0s");
  EXPECT_EQ(FormatDuration(-5 * kHour), "0s");
}

TEST(FormatAgeTest, CoarseUnits) {
  const int64_t now = 1714566896789;
  EXPECT_EQ(FormatAge(0, now), "-");
  EXPECT_EQ(FormatAge(now, now), "just now");
  EXPECT_EQ(FormatAge(now - 999, now), "just now");
  EXPECT_EQ(FormatAge(now - 59 * kSecond, now), "59s ago");
  EXPECT_EQ(FormatAge(now - (3 * kMinute + 12 * kSecond), now), "3m ago");
  EXPECT_EQ(FormatAge(now - (3 * kHour + 59 * kMinute), now), "3h ago");
  EXPECT_EQ(FormatAge(now - (2 * kDay + 23 * kHour), now), "2d ago");
  // In the future (clock skew): not a negative age.
  EXPECT_EQ(FormatAge(now + 10 * kSecond, now), "just now");
}

TEST(FormatUtcTimeTest, Rfc3339WithMilliseconds) {
  EXPECT_EQ(FormatUtcTime(1714566896789), "2024-05-01T12:34:56.789Z");
  EXPECT_EQ(FormatUtcTime(1714566896007), "2024-05-01T12:34:56.007Z");
  EXPECT_EQ(FormatUtcTime(0), "");
}

// ================================================================ text and tables

TEST(OneLineTest, FlattensAndCuts) {
  EXPECT_EQ(OneLine("a\nb\tc\r\n", 60), "a b c");
  EXPECT_EQ(OneLine("abcdefghij", 10), "abcdefghij");
  EXPECT_EQ(OneLine("abcdefghij", 8), "abcde...");
  EXPECT_EQ(OneLine("abcdefghij", 2), "ab");
  // Widths count code points: "é" is one character of two bytes.
  EXPECT_EQ(OneLine("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 4), "\xC3\xA9...");
}

TEST(TableTest, PadsColumnsAndAlignsRight) {
  Table table({"ID", "NAME", "NOTE"});
  table.SetAlign(0, Table::Align::kRight);
  table.AddRow({"7", "a", "x"});
  table.AddRow({"123", "long", ""});
  table.AddRow({"45"});  // missing trailing cells are blank
  EXPECT_EQ(table.rows(), 3u);
  EXPECT_EQ(table.Render(),
            " ID  NAME  NOTE\n"
            "  7  a     x\n"
            "123  long\n"
            " 45\n");
}

TEST(TableTest, WidthsCountUtf8CodePoints) {
  Table table({"K", "V"});
  table.AddRow({"\xC3\xA9t\xC3\xA9", "1"});  // "été": 3 characters, 5 bytes
  table.AddRow({"abcd", "2"});
  EXPECT_EQ(table.Render(),
            "K     V\n"
            "\xC3\xA9t\xC3\xA9   1\n"
            "abcd  2\n");
}

TEST(TableTest, HeaderOnly) {
  Table table({"A", "BB"});
  table.SetAlign(1, Table::Align::kRight);
  EXPECT_EQ(table.Render(), "A  BB\n");
}

// ================================================================ job states

TEST(JobStateTest, ParseIsCaseInsensitive) {
  EXPECT_EQ(ParseJobState("failed"), std::optional<v1::JobState>(v1::FAILED));
  EXPECT_EQ(ParseJobState("FAILED"), std::optional<v1::JobState>(v1::FAILED));
  EXPECT_EQ(ParseJobState("Running"), std::optional<v1::JobState>(v1::RUNNING));
  EXPECT_EQ(ParseJobState("pending"), std::optional<v1::JobState>(v1::PENDING));
  EXPECT_EQ(ParseJobState("succeeded"), std::optional<v1::JobState>(v1::SUCCEEDED));
  EXPECT_EQ(ParseJobState("cancelled"), std::optional<v1::JobState>(v1::CANCELLED));
  EXPECT_EQ(ParseJobState("canceled"), std::optional<v1::JobState>(v1::CANCELLED));
}

TEST(JobStateTest, ParseRejectsEverythingElse) {
  EXPECT_EQ(ParseJobState(""), std::nullopt);
  EXPECT_EQ(ParseJobState("done"), std::nullopt);
  EXPECT_EQ(ParseJobState("fail"), std::nullopt);
  EXPECT_EQ(ParseJobState(" failed"), std::nullopt);
  EXPECT_EQ(ParseJobState("job_state_unspecified"), std::nullopt);
  EXPECT_EQ(ParseJobState("3"), std::nullopt);
}

TEST(JobStateTest, NamesAndTerminality) {
  EXPECT_EQ(StateName(v1::JOB_STATE_UNSPECIFIED), "-");
  EXPECT_EQ(StateName(v1::PENDING), "PENDING");
  EXPECT_EQ(StateName(v1::CANCELLED), "CANCELLED");
  EXPECT_FALSE(IsTerminal(v1::PENDING));
  EXPECT_FALSE(IsTerminal(v1::RUNNING));
  EXPECT_TRUE(IsTerminal(v1::SUCCEEDED));
  EXPECT_TRUE(IsTerminal(v1::FAILED));
  EXPECT_TRUE(IsTerminal(v1::CANCELLED));
}

TEST(RenderJobTableTest, AlignsColumns) {
  const int64_t now = 1714566896789;
  v1::Job running;
  running.set_job_id(7);
  running.set_name("mnist");
  running.set_owner("alice");
  running.set_state(v1::RUNNING);
  running.set_ranks(2);
  running.set_attempt(1);
  running.set_max_attempts(3);
  running.set_started_ms(now - (3 * kMinute + 12 * kSecond));
  v1::Job failed;
  failed.set_job_id(12);
  failed.set_name("resnet-long");
  failed.set_state(v1::FAILED);
  failed.set_ranks(16);
  failed.set_priority(10);
  failed.set_attempt(3);
  failed.set_max_attempts(3);
  failed.set_started_ms(1000);
  failed.set_finished_ms(1000 + 2 * kHour + 5 * kMinute);
  failed.set_reason("rank 1 exited with code 3");
  v1::Job pending;
  pending.set_job_id(100);
  pending.set_name("q");
  pending.set_state(v1::PENDING);
  pending.set_ranks(1);
  pending.set_priority(-5);
  pending.set_submitted_ms(now - 5 * kMinute);
  pending.set_reason("waiting\nfor slots");

  EXPECT_EQ(RenderJobTable({running, failed, pending}, now),
            " ID  NAME         OWNER  STATE    RANKS  PRIO  ATTEMPT  AGE/DURATION  REASON\n"
            "  7  mnist        alice  RUNNING      2     0      1/3  3m12s\n"
            " 12  resnet-long  -      FAILED      16    10      3/3  2h05m         rank 1 exited "
            "with code 3\n"
            "100  q            -      PENDING      1    -5      0/1  5m ago        waiting for "
            "slots\n");
  EXPECT_EQ(RenderJobTable({}, now), "no jobs\n");
}

// ================================================================ progress lines

v1::ProgressEvent Progress(const std::string& json) {
  auto event = ParseProgress(json);
  EXPECT_TRUE(event.ok()) << event.status().message();
  return event.ok() ? *event : v1::ProgressEvent{};
}

TEST(FormatProgressTest, StepEventWithLossThroughputAndEta) {
  const v1::ProgressEvent event =
      Progress(R"({"event":"step","epoch":2,"epochs":5,"step":240,"step_in_epoch":40,)"
               R"("steps_per_epoch":200,"loss":0.43121,"samples_per_s":1234.4,"eta_s":192.5,)"
               R"("not_a_field":true})");
  EXPECT_TRUE(IsLiveProgress(event));
  EXPECT_EQ(FormatProgress(event),
            "epoch 2/5  step 40/200  loss 0.4312  1234 samples/s  ETA 3m12s");
}

TEST(FormatProgressTest, StepEventInCamelCaseWithLrAndSlowThroughput) {
  const v1::ProgressEvent event =
      Progress(R"({"event":"step","step":"17","loss":1.5,"lr":0.001,"samplesPerS":45.26})");
  EXPECT_EQ(FormatProgress(event), "step 17  loss 1.5000  lr 0.001  45.3 samples/s");
}

TEST(FormatProgressTest, NanLoss) {
  const v1::ProgressEvent event = Progress(R"({"event":"step","epoch":1,"step":12,"loss":"NaN"})");
  EXPECT_TRUE(std::isnan(event.loss()));
  EXPECT_EQ(FormatProgress(event), "epoch 1  step 12  loss nan");
}

TEST(FormatProgressTest, EpochEvent) {
  const v1::ProgressEvent event =
      Progress(R"({"event":"epoch","epoch":2,"epochs":5,"train_loss":0.41234,"seconds":45.9,)"
               R"("metrics":{"val_loss":0.5,"accuracy":0.91}})");
  EXPECT_FALSE(IsLiveProgress(event));
  EXPECT_EQ(FormatProgress(event),
            "epoch 2/5 done in 45s: train_loss 0.4123, accuracy 0.91, val_loss 0.5");
}

TEST(FormatProgressTest, EpochEventWithoutEpochOrSeconds) {
  const v1::ProgressEvent event = Progress(R"({"event":"epoch","train_loss":2})");
  EXPECT_EQ(FormatProgress(event), "epoch done: train_loss 2.0000");
}

TEST(FormatProgressTest, OtherEvents) {
  EXPECT_EQ(FormatProgress(Progress(
                R"({"event":"checkpoint","step":500,"path":"runs/x/checkpoints/ckpt-500.pt"})")),
            "checkpoint at step 500: runs/x/checkpoints/ckpt-500.pt");
  EXPECT_EQ(
      FormatProgress(Progress(
          R"({"event":"failed","rank":1,"exit_code":3,"message":"loss became NaN\nat step 12"})")),
      "rank 1 failed (exit code 3): loss became NaN at step 12");
  EXPECT_EQ(FormatProgress(Progress(R"({"event":"started","world_size":4})")),
            "started on 4 ranks");
  EXPECT_EQ(FormatProgress(Progress(R"({"event":"started","world_size":1})")), "started on 1 rank");
  EXPECT_EQ(FormatProgress(Progress(
                R"({"event":"finished","summary":{"steps":1000,"name":"x","best_loss":0.25}})")),
            "finished: best_loss 0.25, steps 1000");
  EXPECT_EQ(FormatProgress(Progress(R"({"event":"warmup"})")), "warmup event");
}

TEST(ParseProgressTest, RejectsNonJson) {
  auto event = ParseProgress("loss=0.5");
  ASSERT_FALSE(event.ok());
  EXPECT_EQ(event.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(event.status().message().rfind("progress event is not valid ProgressEvent JSON: ", 0),
            0u)
      << event.status().message();
}

TEST(LiveLineTest, TerminalRedrawsInPlace) {
  LiveLine live(/*terminal=*/true);
  EXPECT_EQ(live.Print("before"), "before\n");  // nothing live yet
  EXPECT_EQ(live.Show("step 1"), "\r\033[Kstep 1");
  EXPECT_EQ(live.Print("log"), "\r\033[Klog\nstep 1");
  EXPECT_EQ(live.Replace("epoch done"), "\r\033[Kepoch done\n");
  EXPECT_EQ(live.Finish(), "");  // the live line was replaced
  EXPECT_EQ(live.Show("step 2"), "\r\033[Kstep 2");
  EXPECT_EQ(live.Finish(), "\n");
}

TEST(LiveLineTest, PlainLinesWithoutTerminal) {
  LiveLine live(/*terminal=*/false);
  EXPECT_EQ(live.Show("step 1"), "step 1\n");
  EXPECT_EQ(live.Print("log"), "log\n");
  EXPECT_EQ(live.Replace("done"), "done\n");
  EXPECT_EQ(live.Finish(), "");
}

// ================================================================ JSON

TEST(JobToJsonTest, NanMetricAndZeroTimesAreNull) {
  v1::Job job;
  job.set_job_id(12);
  job.set_name("mnist");
  job.set_state(v1::FAILED);
  job.set_ranks(2);
  job.set_priority(1);
  job.set_attempt(1);
  job.set_max_attempts(3);
  job.set_submitted_ms(1714566896789);
  (*job.mutable_metrics())["loss"] = std::numeric_limits<double>::quiet_NaN();
  (*job.mutable_metrics())["acc"] = 0.5;
  (*job.mutable_metrics())["gain"] = std::numeric_limits<double>::infinity();

  EXPECT_EQ(
      JobToJson(job).dump(),
      R"({"job_id":12,"name":"mnist","state":"FAILED","ranks":2,"priority":1,"attempt":1,)"
      R"("max_attempts":3,"submitted_ms":1714566896789,"submitted":"2024-05-01T12:34:56.789Z",)"
      R"("started_ms":0,"started":null,"finished_ms":0,"finished":null,"reason":"",)"
      R"("placement":"","failing_rank":0,"exit_code":0,"signal":0,"rank_signal":0,)"
      R"("last_log_lines":"","output_dir":"","queue_position":0,"waiting_reason":"",)"
      R"("owner":"","held":false,"after":[],"array_id":0,)"
      R"("array_index":0,"compacted_ms":0,"compacted":null,)"
      R"("metrics":{"acc":0.5,"gain":null,"loss":null},"history":[]})");
}

// Issue 10 item 2: a rank killed by a signal is named with it (the store keeps rank_signal).
TEST(RenderFailureTest, RankKilledBySignalIsNamedWithTheSignal) {
  v1::Job job;
  job.set_state(v1::FAILED);
  job.set_failing_rank(2);
  job.set_exit_code(137);
  job.set_rank_signal(9);
  job.set_last_log_lines("mpirun noticed that process rank 2 ... exited on signal 9 (Killed).\n");
  EXPECT_EQ(RenderFailure(job),
            "rank 2 was killed by signal 9 (SIGKILL)\n"
            "last log lines:\n"
            "  mpirun noticed that process rank 2 ... exited on signal 9 (Killed).\n");
  EXPECT_EQ(JobToJson(job)["rank_signal"], 9);
}

TEST(JobToJsonTest, HistoryAndSpec) {
  v1::Job job;
  job.set_job_id(3);
  job.set_state(v1::RUNNING);
  job.set_started_ms(1714566896789);
  job.set_spec_yaml("name: x\n");
  v1::Transition* t = job.add_history();
  t->set_from(v1::PENDING);
  t->set_to(v1::RUNNING);
  t->set_attempt(1);
  t->set_at_ms(1714566896789);
  t->set_reason("scheduled");
  const nlohmann::ordered_json j = JobToJson(job);
  EXPECT_EQ(j["started"], "2024-05-01T12:34:56.789Z");
  EXPECT_EQ(j["submitted"], nullptr);
  EXPECT_EQ(j["history"].dump(),
            R"([{"from":"PENDING","to":"RUNNING","attempt":1,"at_ms":1714566896789,)"
            R"("at":"2024-05-01T12:34:56.789Z","reason":"scheduled"}])");
  EXPECT_EQ(j["spec_yaml"], "name: x\n");
}

TEST(EventToJsonTest, ProgressPayloadIsEmbedded) {
  v1::JobEvent event;
  event.set_job_id(4);
  event.set_seq(9);
  event.set_kind("progress");
  event.set_payload(R"({"event":"step","loss":0.5})");
  EXPECT_EQ(EventToJson(event).dump(),
            R"({"job_id":4,"seq":9,"at_ms":0,"at":null,"kind":"progress",)"
            R"("payload":{"event":"step","loss":0.5}})");
  event.set_kind("log");
  event.set_payload("{not json");
  EXPECT_EQ(EventToJson(event)["payload"], "{not json");
}

// ================================================================ errors and exit codes

TEST(ExitCodeTest, RpcErrors) {
  EXPECT_EQ(ExitCodeForRpcError(grpc::StatusCode::OK), 0);
  EXPECT_EQ(ExitCodeForRpcError(grpc::StatusCode::UNAUTHENTICATED), 3);
  EXPECT_EQ(ExitCodeForRpcError(grpc::StatusCode::UNAVAILABLE), 3);
  EXPECT_EQ(ExitCodeForRpcError(grpc::StatusCode::PERMISSION_DENIED), 3);
  EXPECT_EQ(ExitCodeForRpcError(grpc::StatusCode::DEADLINE_EXCEEDED), 3);
  EXPECT_EQ(ExitCodeForRpcError(grpc::StatusCode::UNIMPLEMENTED), 6);  // not this backend
  EXPECT_EQ(ExitCodeForRpcError(grpc::StatusCode::NOT_FOUND), 5);
  EXPECT_EQ(ExitCodeForRpcError(grpc::StatusCode::INVALID_ARGUMENT), 2);
  // Issue 16 item 8: "already finished" (cancel) and "detector disabled" (faces) are refusals in
  // the current state, told apart from an unreachable coordinator.
  EXPECT_EQ(ExitCodeForRpcError(grpc::StatusCode::FAILED_PRECONDITION), 6);
  EXPECT_EQ(kExitRefused, 6);
}

TEST(ExitCodeTest, JobStates) {
  EXPECT_EQ(ExitCodeForJobState(v1::SUCCEEDED), kExitOk);
  EXPECT_EQ(ExitCodeForJobState(v1::SUCCEEDED), 0);
  EXPECT_EQ(ExitCodeForJobState(v1::FAILED), 1);
  EXPECT_EQ(ExitCodeForJobState(v1::CANCELLED), 4);
  EXPECT_EQ(ExitCodeForJobState(v1::RUNNING), 3);
  EXPECT_EQ(ExitCodeForJobState(v1::PENDING), 3);
  EXPECT_EQ(ExitCodeForJobState(v1::JOB_STATE_UNSPECIFIED), 3);
}

TEST(FormatRpcErrorTest, CodeMessageAndAddress) {
  EXPECT_EQ(FormatRpcError(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token"),
                           "127.0.0.1:7070"),
            "UNAUTHENTICATED: invalid bearer token (address 127.0.0.1:7070)");
  EXPECT_EQ(FormatRpcError(grpc::Status(grpc::StatusCode::UNAVAILABLE, ""), "h:1"),
            "UNAVAILABLE: (no message) (address h:1)");
  EXPECT_STREQ(GrpcCodeName(grpc::StatusCode::FAILED_PRECONDITION), "FAILED_PRECONDITION");
  EXPECT_STREQ(GrpcCodeName(static_cast<grpc::StatusCode>(99)), "UNKNOWN");
}

// ================================================================ --set overrides

TEST(ParseOverridesTest, KeyValuePairs) {
  auto overrides = ParseOverrides({"a.b=c", "train.epochs=3", "empty=", "eq=x=y"});
  ASSERT_TRUE(overrides.ok()) << overrides.status().message();
  const std::map<std::string, std::string> expected = {
      {"a.b", "c"}, {"train.epochs", "3"}, {"empty", ""}, {"eq", "x=y"}};
  EXPECT_EQ(*overrides, expected);

  auto none = ParseOverrides({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(ParseOverridesTest, MissingEquals) {
  auto overrides = ParseOverrides({"a.b=c", "train.epochs"});
  ASSERT_FALSE(overrides.ok());
  EXPECT_EQ(overrides.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(overrides.status().message(),
            "--set 'train.epochs': expected key=value (e.g. train.epochs=3)");
}

TEST(ParseOverridesTest, EmptyKey) {
  auto overrides = ParseOverrides({"=c"});
  ASSERT_FALSE(overrides.ok());
  EXPECT_EQ(overrides.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(overrides.status().message(), "--set '=c': the key is empty");
}

TEST(ParseOverridesTest, KeyGivenTwice) {
  auto overrides = ParseOverrides({"a=1", "b=2", "a=3"});
  ASSERT_FALSE(overrides.ok());
  EXPECT_EQ(overrides.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(overrides.status().message(), "--set: 'a' is given more than once");
}

// ================================================================ commands against a fake
// coordinator

// Answers SubmitJob/GetJob with what the test set and streams `events` from WatchJob.
class FakeCoordinator final : public v1::Coordinator::Service {
 public:
  grpc::Status SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++submit_calls_;
    last_submit_ = *request;
    if (!submit_status_.ok()) return submit_status_;
    response->set_job_id(42);
    return grpc::Status::OK;
  }
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                      v1::Job* job) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!job_ || job_->job_id() != request->job_id()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "job " + std::to_string(request->job_id()) + " not found");
    }
    *job = *job_;
    return grpc::Status::OK;
  }
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_list_ = *request;
    for (const v1::Job& job : list_) *response->add_jobs() = job;
    return grpc::Status::OK;
  }
  grpc::Status SubmitJobArray(grpc::ServerContext*, const v1::SubmitJobArrayRequest* request,
                              v1::SubmitJobArrayResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_array_ = *request;
    response->set_array_id(50);
    for (int i = 0; i < request->elements_size(); ++i) response->add_job_ids(50 + i);
    return grpc::Status::OK;
  }
  v1::SubmitJobArrayRequest last_array() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_array_;
  }
  grpc::Status HoldJob(grpc::ServerContext*, const v1::HoldJobRequest* request,
                       v1::Job* job) override {
    return Gate(request->job_id(), true, job);
  }
  grpc::Status ReleaseJob(grpc::ServerContext*, const v1::ReleaseJobRequest* request,
                          v1::Job* job) override {
    return Gate(request->job_id(), false, job);
  }
  grpc::Status SetJobPriority(grpc::ServerContext*, const v1::SetJobPriorityRequest* request,
                              v1::Job* job) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!job_ || job_->job_id() != request->job_id()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "not found");
    }
    job_->set_priority(request->priority());
    job_->set_queue_position(1);
    job_->set_waiting_reason("starting at the next scheduling pass");
    *job = *job_;
    return grpc::Status::OK;
  }
  grpc::Status WatchJob(grpc::ServerContext*, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override {
    std::vector<v1::JobEvent> events;
    {
      std::lock_guard<std::mutex> lock(mu_);
      events = events_;
      last_watch_ = *request;
    }
    if (interrupt_on_watch_) std::raise(SIGINT);  // the user presses Ctrl-C while following
    for (const v1::JobEvent& event : events) {
      if (event.seq() > request->after_seq()) writer->Write(event);
    }
    return grpc::Status::OK;
  }

  void SetSubmitStatus(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    submit_status_ = std::move(status);
  }
  void SetJob(v1::Job job) {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = std::move(job);
  }
  void AddEvent(const std::string& kind, const std::string& payload) {
    std::lock_guard<std::mutex> lock(mu_);
    v1::JobEvent event;
    event.set_job_id(42);
    event.set_seq(static_cast<int64_t>(events_.size()) + 1);
    event.set_kind(kind);
    event.set_payload(payload);
    events_.push_back(std::move(event));
  }
  int submit_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return submit_calls_;
  }
  v1::SubmitJobRequest last_submit() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_submit_;
  }
  void SetList(std::vector<v1::Job> jobs) {
    std::lock_guard<std::mutex> lock(mu_);
    list_ = std::move(jobs);
  }
  v1::ListJobsRequest last_list() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_list_;
  }
  void InterruptOnWatch() { interrupt_on_watch_ = true; }
  v1::WatchJobRequest last_watch() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_watch_;
  }

 private:
  // Hold (or release) the job the test set, as the coordinator answers: refused unless PENDING.
  grpc::Status Gate(int64_t id, bool hold, v1::Job* job) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!job_ || job_->job_id() != id) return grpc::Status(grpc::StatusCode::NOT_FOUND, "nf");
    if (job_->state() != v1::PENDING) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "job " + std::to_string(id) + " is RUNNING");
    }
    job_->set_held(hold);
    job_->set_queue_position(hold ? 0 : 1);
    job_->set_waiting_reason(hold ? "held by user" : "");
    *job = *job_;
    return grpc::Status::OK;
  }

  std::mutex mu_;
  v1::SubmitJobArrayRequest last_array_;
  grpc::Status submit_status_;
  int submit_calls_ = 0;
  v1::SubmitJobRequest last_submit_;
  std::optional<v1::Job> job_;
  std::vector<v1::JobEvent> events_;
  std::vector<v1::Job> list_;
  v1::ListJobsRequest last_list_;
  v1::WatchJobRequest last_watch_;
  std::atomic<bool> interrupt_on_watch_{false};

 public:
  // GetRankLog serves `text` in pages of at most 10 bytes; `grows` is appended after the first
  // read that reached the end (the rank wrote more), and the job ends after that.
  void SetRankLog(const std::string& text, const std::string& grows = "") {
    std::lock_guard<std::mutex> lock(mu_);
    rank_text_ = text;
    rank_grows_ = grows;
    rank_reads_ = 0;
  }
  grpc::Status GetRankLog(grpc::ServerContext*, const v1::GetRankLogRequest* request,
                          v1::GetRankLogResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_rank_log_ = *request;
    ++rank_reads_;
    const size_t from = std::min(static_cast<size_t>(request->offset()), rank_text_.size());
    response->set_data(rank_text_.substr(from, 10));
    response->set_next_offset(static_cast<int64_t>(from + response->data().size()));
    response->set_attempt(2);
    const bool at_end = response->next_offset() == static_cast<int64_t>(rank_text_.size());
    if (at_end && !rank_grows_.empty()) {
      rank_text_ += rank_grows_;
      rank_grows_.clear();
    } else {
      response->set_complete(at_end && response->data().size() < 10);
    }
    return grpc::Status::OK;
  }
  v1::GetRankLogRequest last_rank_log() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_rank_log_;
  }

 private:
  std::string rank_text_;
  std::string rank_grows_;
  int rank_reads_ = 0;
  v1::GetRankLogRequest last_rank_log_;
};

class CommandTest : public LoadConfigFileTest {
 protected:
  void SetUp() override {
    LoadConfigFileTest::SetUp();
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Coordinator::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));

    job_file_ = (dir_ / "job.yaml").string();
    std::ofstream(job_file_) << "name: mnist\n";
    env_.settings.address = "coord:7070";
    env_.settings.timeout_s = 10;
    env_.out = &out_;
    env_.err = &err_;
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    LoadConfigFileTest::TearDown();
  }

  int Submit(std::vector<std::string> sets = {}, bool follow = false) {
    SubmitOptions options;
    options.job_file = job_file_;
    options.sets = std::move(sets);
    options.follow = follow;
    return RunSubmit(options, stub_.get(), env_);
  }

  FakeCoordinator service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::string job_file_;
  CommandEnv env_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CommandTest, SubmitPrintsTheJobIdAndSendsOverrides) {
  EXPECT_EQ(Submit({"train.epochs=3", "a.b=c"}), kExitOk);
  EXPECT_EQ(out_.str(), "submitted job 42\n");
  EXPECT_EQ(err_.str(), "");
  const v1::SubmitJobRequest request = service_.last_submit();
  EXPECT_EQ(request.spec_yaml(), "name: mnist\n");
  ASSERT_EQ(request.overrides_size(), 2);
  EXPECT_EQ(request.overrides().at("train.epochs"), "3");
  EXPECT_EQ(request.overrides().at("a.b"), "c");
}

// Issue 16: holds, dependencies and owners travel with the submission.
TEST_F(CommandTest, SubmitSendsAfterHoldAndOwner) {
  SubmitOptions options;
  options.job_file = job_file_;
  options.after = {"3", "5"};
  options.hold = true;
  options.owner = "alice";
  EXPECT_EQ(RunSubmit(options, stub_.get(), env_), kExitOk) << err_.str();
  const v1::SubmitJobRequest request = service_.last_submit();
  ASSERT_EQ(request.after_size(), 2);
  EXPECT_EQ(request.after(0), 3);
  EXPECT_EQ(request.after(1), 5);
  EXPECT_TRUE(request.hold());
  EXPECT_EQ(request.owner(), "alice");
  options.after = {"0"};
  EXPECT_EQ(RunSubmit(options, stub_.get(), env_), kExitUsage);
  EXPECT_NE(err_.str().find("--after '0' is not a job id"), std::string::npos) << err_.str();
}

TEST_F(CommandTest, SubmitSweepQueuesOneElementPerTrial) {
  const std::string sweep = (dir_ / "sweep.yaml").string();
  std::ofstream(sweep) << "method: grid\nparameters:\n  train.epochs: [1, 2]\n";
  SubmitOptions options;
  options.job_file = job_file_;
  options.sweep = sweep;
  options.sets = {"train.batch_size=8"};
  EXPECT_EQ(RunSubmit(options, stub_.get(), env_), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "submitted array 50: 2 jobs\n  job 50 [0] train.epochs=1\n  job 51 [1] "
            "train.epochs=2\n");
  const v1::SubmitJobArrayRequest request = service_.last_array();
  EXPECT_EQ(request.job().spec_yaml(), "name: mnist\n");
  EXPECT_EQ(request.job().overrides().at("train.batch_size"), "8");
  ASSERT_EQ(request.elements_size(), 2);
  EXPECT_EQ(request.elements(1).overrides().at("train.epochs"), "2");
  std::ofstream(sweep) << "method: grid\nparameters:\n  train.epochs: {min: 1, max: 2}\n";
  EXPECT_EQ(RunSubmit(options, stub_.get(), env_), kExitUsage);
  EXPECT_NE(err_.str().find("a grid needs a list of values"), std::string::npos) << err_.str();
  options.follow = true;
  EXPECT_EQ(RunSubmit(options, stub_.get(), env_), kExitUsage);
}

TEST_F(CommandTest, ListRanksAnArrayByAMetric) {
  std::vector<v1::Job> jobs;
  for (int i = 0; i < 3; ++i) {
    v1::Job job;
    job.set_job_id(50 + i);
    job.set_name("sweep");
    job.set_state(v1::SUCCEEDED);
    job.set_array_id(50);
    job.set_array_index(i);
    if (i != 1) (*job.mutable_metrics())["test.accuracy"] = i == 0 ? 0.5 : 0.75;
    jobs.push_back(job);
  }
  service_.SetList(jobs);
  ListOptions options;
  options.array_id = 50;
  options.rank_by = "test.accuracy";
  env_.settings.json = true;
  EXPECT_EQ(RunList(options, stub_.get(), env_), kExitOk) << err_.str();
  EXPECT_EQ(service_.last_list().array_id(), 50);
  const auto ranked = nlohmann::json::parse(out_.str());
  ASSERT_EQ(ranked.size(), 3u);
  EXPECT_EQ(ranked[0]["job_id"], 52);  // 0.75, then 0.5, then the trial without the metric
  EXPECT_EQ(ranked[1]["job_id"], 50);
  EXPECT_EQ(ranked[2]["job_id"], 51);
  env_.settings.json = false;
  out_.str("");
  options.rank_by = "test.accuracy:min";
  EXPECT_EQ(RunList(options, stub_.get(), env_), kExitOk);
  const std::string table = out_.str();
  EXPECT_NE(table.find("test.accuracy"), std::string::npos) << table;
  EXPECT_LT(table.find("sweep[0]"), table.find("sweep[2]")) << table;
  options.rank_by = "acc:best";
  EXPECT_EQ(RunList(options, stub_.get(), env_), kExitUsage);
}

TEST_F(CommandTest, HoldReleaseAndPrioritySayWhereTheJobStands) {
  v1::Job queued;
  queued.set_job_id(7);
  queued.set_state(v1::PENDING);
  service_.SetJob(queued);
  EXPECT_EQ(RunHold(7, true, stub_.get(), env_), kExitOk);
  EXPECT_EQ(out_.str(), "job 7: PENDING, held by user\n");
  out_.str("");
  EXPECT_EQ(RunHold(7, false, stub_.get(), env_), kExitOk);
  EXPECT_EQ(out_.str(), "job 7: PENDING, released\n");
  out_.str("");
  EXPECT_EQ(RunSetPriority(7, 50, stub_.get(), env_), kExitOk);
  EXPECT_EQ(out_.str(), "job 7: priority 50 (#1: starting at the next scheduling pass)\n");
  EXPECT_EQ(RunHold(8, true, stub_.get(), env_), kExitNotFound);
  queued.set_state(v1::RUNNING);
  service_.SetJob(queued);
  EXPECT_EQ(RunHold(7, true, stub_.get(), env_), kExitRefused);
}

TEST_F(CommandTest, ListSendsTheOwnerFilter) {
  ListOptions options;
  options.owner = "bob";
  EXPECT_EQ(RunList(options, stub_.get(), env_), kExitOk);
  EXPECT_EQ(service_.last_list().owner(), "bob");
}

TEST(DefaultOwnerTest, IsUserWhenItIsAValidOwner) {
  EXPECT_EQ(DefaultOwner("alice"), "alice");
  EXPECT_EQ(DefaultOwner("a.b-c_d@e"), "a.b-c_d@e");
  EXPECT_EQ(DefaultOwner(nullptr), "");
  EXPECT_EQ(DefaultOwner(""), "");
  EXPECT_EQ(DefaultOwner("two words"), "");
  EXPECT_EQ(DefaultOwner(std::string(65, 'x').c_str()), "");
}

TEST(ShownReasonTest, BlockedJobsShowWhyWithoutAPlace) {
  v1::Job held;
  held.set_job_id(9);
  held.set_state(v1::PENDING);
  held.set_held(true);
  held.set_owner("alice");
  held.add_after(3);
  held.set_waiting_reason("held by user; waiting for job 3 to succeed");
  EXPECT_EQ(ShownReason(held), "held by user; waiting for job 3 to succeed");
  const std::string detail = RenderJobDetail(held, 0);
  EXPECT_NE(
      detail.find("  queue       not startable: held by user; waiting for job 3 to succeed\n"),
      std::string::npos)
      << detail;
  EXPECT_NE(detail.find("  held        yes (dtrain release 9)\n"), std::string::npos) << detail;
  EXPECT_NE(detail.find("  after       3 (starts once these SUCCEEDED)\n"), std::string::npos)
      << detail;
  EXPECT_NE(detail.find("  owner       alice\n"), std::string::npos) << detail;
  const auto json = JobToJson(held);
  EXPECT_EQ(json["held"], true);
  EXPECT_EQ(json["after"], nlohmann::ordered_json::array({3}));
  EXPECT_EQ(json["owner"], "alice");
}

TEST_F(CommandTest, SubmitJson) {
  env_.settings.json = true;
  EXPECT_EQ(Submit(), kExitOk);
  EXPECT_EQ(out_.str(), "{\n  \"job_id\": 42\n}\n");
}

TEST_F(CommandTest, SubmitRejectedSpecIsUsageError) {
  service_.SetSubmitStatus(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "job.yaml:1:1: unknown key 'nmae'"));
  EXPECT_EQ(Submit(), 2);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(),
            "dtrain: " + job_file_ + " was rejected:\njob.yaml:1:1: unknown key 'nmae'\n");
}

TEST_F(CommandTest, SubmitThatCanNeverFitIsUsageError) {
  service_.SetSubmitStatus(
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "64 ranks can never fit on 8 slots"));
  EXPECT_EQ(Submit(), 2);
  EXPECT_EQ(err_.str(),
            "dtrain: " + job_file_ + " was rejected:\n64 ranks can never fit on 8 slots\n");
}

TEST_F(CommandTest, SubmitUnauthenticatedIsServerError) {
  service_.SetSubmitStatus(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token"));
  EXPECT_EQ(Submit(), 3);
  EXPECT_EQ(err_.str(),
            "dtrain: UNAUTHENTICATED: invalid bearer token (address coord:7070)\n"
            "dtrain: no token was given; use --token-file, DTRAIN_TOKEN_FILE or token_file in "
            "the config file\n");
}

TEST_F(CommandTest, SubmitUnavailableIsServerError) {
  service_.SetSubmitStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"));
  EXPECT_EQ(Submit(), 3);
  EXPECT_EQ(err_.str(),
            "dtrain: UNAVAILABLE: connection refused (address coord:7070)\n"
            "dtrain: is the coordinator running there? (--address, DTRAIN_ADDRESS or address in "
            "the config file)\n");
}

TEST_F(CommandTest, SubmitBadOverrideIsUsageErrorWithoutCallingTheCoordinator) {
  EXPECT_EQ(Submit({"train.epochs"}), 2);
  EXPECT_EQ(err_.str(), "dtrain: --set 'train.epochs': expected key=value (e.g. train.epochs=3)\n");
  EXPECT_EQ(service_.submit_calls(), 0);
}

// Issue 10: invalid UTF-8 in a spec gave "INTERNAL: (no message)": gRPC cannot send it.
TEST_F(CommandTest, SubmitOfASpecThatIsNotUtf8NamesTheByteWithoutCallingTheCoordinator) {
  std::ofstream(job_file_) << "name: mnist\ndata: {path: caf\xe9}\n";  // Latin-1
  EXPECT_EQ(Submit(), 2);
  EXPECT_EQ(err_.str(), "dtrain: job spec '" + job_file_ +
                            "': not UTF-8 text (byte 0xe9 at line 2, column 17)\n");
  err_.str("");
  std::ofstream(job_file_) << "name: mnist\n";
  EXPECT_EQ(Submit({"data.path=caf\xe9"}), 2);
  EXPECT_EQ(err_.str(), "dtrain: --set: not UTF-8 text (byte 0xe9 at line 1, column 14)\n");
  EXPECT_EQ(service_.submit_calls(), 0);
}

TEST_F(CommandTest, SubmitUnreadableSpecIsUsageError) {
  job_file_ = (dir_ / "missing.yaml").string();
  EXPECT_EQ(Submit(), 2);
  EXPECT_EQ(err_.str(),
            "dtrain: cannot read job spec '" + job_file_ + "': No such file or directory\n");
  EXPECT_EQ(service_.submit_calls(), 0);
}

TEST_F(CommandTest, StatusOfUnknownJobIsNotFound) {
  EXPECT_EQ(RunStatus(int64_t{77}, stub_.get(), env_), 5);
  EXPECT_EQ(err_.str(), "dtrain: NOT_FOUND: job 77 not found (address coord:7070)\n");
}

v1::Job FinishedJob(v1::JobState state) {
  v1::Job job;
  job.set_job_id(42);
  job.set_state(state);
  job.set_attempt(1);
  job.set_max_attempts(3);
  job.set_started_ms(1714566896789);
  job.set_finished_ms(1714566896789 + 3 * kMinute + 12 * kSecond);
  return job;
}

TEST_F(CommandTest, FollowedJobThatFailedExitsOne) {
  v1::Job job = FinishedJob(v1::FAILED);
  job.set_reason("rank 1 exited with code 3");
  job.set_failing_rank(1);
  job.set_exit_code(3);
  job.set_last_log_lines("boom\n");
  service_.SetJob(job);
  service_.AddEvent("state", "RUNNING");
  service_.AddEvent("progress", R"({"event":"step","step":5,"loss":"NaN"})");
  service_.AddEvent("progress", R"({"event":"failed","rank":1,"exit_code":3})");
  service_.AddEvent("state", "FAILED");

  EXPECT_EQ(Submit({}, /*follow=*/true), 1);
  EXPECT_EQ(out_.str(),
            "submitted job 42\n"
            "job 42: RUNNING\n"
            "step 5  loss nan\n"
            "rank 1 failed (exit code 3)\n"
            "job 42: FAILED\n"
            "job 42 FAILED after 3m12s (attempt 1/3): rank 1 exited with code 3\n"
            "last log lines:\n"
            "  boom\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CommandTest, FollowedJobThatSucceededExitsZero) {
  service_.SetJob(FinishedJob(v1::SUCCEEDED));
  EXPECT_EQ(Submit({}, /*follow=*/true), 0);
  EXPECT_EQ(out_.str(), "submitted job 42\njob 42 SUCCEEDED after 3m12s (attempt 1/3)\n");
}

// Issue 16 item 4: the end of --follow said neither how well the model did nor where it went.
TEST_F(CommandTest, FollowedJobThatSucceededGivesTheTestMetricsAndTheOutputDir) {
  v1::Job job = FinishedJob(v1::SUCCEEDED);
  (*job.mutable_metrics())["test.accuracy"] = 0.9125;
  (*job.mutable_metrics())["eval.accuracy"] = 0.9;
  (*job.mutable_metrics())["test.auc"] = 0.97;
  job.set_output_dir("/srv/runs/mnist/job-42-20261205-110000");
  service_.SetJob(job);
  service_.AddEvent(
      "progress",
      R"({"event":"finished","rank":0,"summary":{"global_steps":300,"test":{"accuracy":0.9125}}})");
  EXPECT_EQ(Submit({}, /*follow=*/true), 0);
  EXPECT_EQ(out_.str(),
            "submitted job 42\n"
            "finished: test accuracy 0.9125, global_steps 300\n"
            "job 42 SUCCEEDED after 3m12s (attempt 1/3): test.accuracy 0.9125, test.auc 0.97\n"
            "output: /srv/runs/mnist/job-42-20261205-110000\n");
  out_.str("");
  ASSERT_EQ(RunStatus(42, stub_.get(), env_), kExitOk);
  EXPECT_NE(out_.str().find("output_dir  /srv/runs/mnist/job-42-20261205-110000\n"),
            std::string::npos)
      << out_.str();
}

TEST_F(CommandTest, FollowedJobThatWasCancelledExitsFour) {
  v1::Job job = FinishedJob(v1::CANCELLED);
  job.set_reason("cancelled by user");
  service_.SetJob(job);
  EXPECT_EQ(Submit({}, /*follow=*/true), 4);
  EXPECT_EQ(out_.str(),
            "submitted job 42\njob 42 CANCELLED after 3m12s (attempt 1/3): cancelled by user\n");
}

// Issue 16 item 5: a pending job said "submitted"; now where it stands and why.
TEST_F(CommandTest, FollowingAQueuedJobSaysWhereItStands) {
  v1::Job job = FinishedJob(v1::SUCCEEDED);
  service_.SetJob(job);
  service_.AddEvent("state", "PENDING");
  EXPECT_EQ(Submit({}, /*follow=*/true), 0);
  // A finished job no longer waits: nothing is added.
  EXPECT_EQ(out_.str().rfind("submitted job 42\njob 42: PENDING\n", 0), 0u) << out_.str();
  v1::Job queued;
  queued.set_job_id(7);
  queued.set_state(v1::PENDING);
  queued.set_reason("submitted");
  queued.set_queue_position(2);
  queued.set_waiting_reason("waiting for 2 slots (0 of 4 free); 1 job ahead");
  EXPECT_EQ(ShownReason(queued), "#2: waiting for 2 slots (0 of 4 free); 1 job ahead");
  EXPECT_NE(RenderJobDetail(queued, 0).find(
                "  queue       position 2: waiting for 2 slots (0 of 4 free); 1 job ahead\n"),
            std::string::npos)
      << RenderJobDetail(queued, 0);
}

// Issue 16 item 5: Ctrl-C left the user guessing whether the job stopped too.
TEST_F(CommandTest, CtrlCWhileFollowingSaysTheJobKeepsRunning) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  service_.SetJob(FinishedJob(v1::RUNNING));
  service_.InterruptOnWatch();
  EXPECT_EXIT(Submit({}, /*follow=*/true), ::testing::ExitedWithCode(kExitInterrupted),
              "dtrain: stopped following job 42; it keeps running \\(dtrain logs 42 -f follows "
              "it again, dtrain cancel 42 stops it\\)");
}

// Issue 16 item 3: the list showed the oldest 100 jobs.
TEST_F(CommandTest, ListAsksForTheNewestFirstFilteredByNameAndSortsWhatItShows) {
  std::vector<v1::Job> jobs;
  const std::pair<const char*, int> shown[] = {{"c", 0}, {"a", 5}, {"b", 5}};
  int64_t id = 3;
  for (const auto& [name, priority] : shown) {
    v1::Job job;
    job.set_job_id(id--);
    job.set_name(name);
    job.set_priority(priority);
    job.set_state(v1::PENDING);
    jobs.push_back(job);
  }
  service_.SetList(jobs);
  ListOptions options;
  options.name = "mnist-*";
  EXPECT_EQ(RunList(options, stub_.get(), env_), kExitOk);
  v1::ListJobsRequest request = service_.last_list();
  EXPECT_EQ(request.order_by(), "id desc");
  EXPECT_EQ(request.name(), "mnist-*");
  EXPECT_EQ(request.view(), v1::JOB_VIEW_BASIC);
  const std::string newest = out_.str();
  EXPECT_LT(newest.find("\n 3 "), newest.find("\n 1 ")) << newest;
  out_.str("");
  options.sort = "priority";
  EXPECT_EQ(RunList(options, stub_.get(), env_), kExitOk);
  const std::string by_priority = out_.str();
  // 2 and 1 (priority 5, newest first among them), then 3.
  EXPECT_LT(by_priority.find("\n 2 "), by_priority.find("\n 1 ")) << by_priority;
  EXPECT_LT(by_priority.find("\n 1 "), by_priority.find("\n 3 ")) << by_priority;
  options.sort = "oldest";
  EXPECT_EQ(RunList(options, stub_.get(), env_), kExitOk);
  EXPECT_EQ(service_.last_list().order_by(), "id");
  options.sort = "size";
  EXPECT_EQ(RunList(options, stub_.get(), env_), kExitUsage);
}

// Issue 16 item 3: `dtrain logs ID --rank N`, read page by page.
TEST_F(CommandTest, LogsOfOneRankArePagedTailedAndFollowed) {
  service_.SetRankLog("line one\nline two\nline three\nno newline");
  LogsOptions options;
  options.job_id = 42;
  options.rank = 1;
  EXPECT_EQ(RunLogs(options, stub_.get(), env_), kExitOk);
  EXPECT_EQ(out_.str(), "line one\nline two\nline three\nno newline\n");
  EXPECT_EQ(service_.last_rank_log().rank(), 1);
  EXPECT_EQ(service_.last_rank_log().stream(), v1::RANK_LOG_STREAM_STDOUT);
  out_.str("");
  options.tail = 2;
  options.stderr_stream = true;
  EXPECT_EQ(RunLogs(options, stub_.get(), env_), kExitOk);
  EXPECT_EQ(out_.str(), "line three\nno newline\n");
  EXPECT_EQ(service_.last_rank_log().stream(), v1::RANK_LOG_STREAM_STDERR);
  // --follow keeps reading until the job has ended and everything was read.
  out_.str("");
  service_.SetRankLog("first\n", "second\n");
  options.tail = 0;
  options.follow = true;
  EXPECT_EQ(RunLogs(options, stub_.get(), env_), kExitOk);
  EXPECT_EQ(out_.str(), "first\nsecond\n");
  // --json: one object with the lines (or, following, one per line).
  out_.str("");
  options.follow = false;
  env_.settings.json = true;
  service_.SetRankLog("a\nb\n");
  EXPECT_EQ(RunLogs(options, stub_.get(), env_), kExitOk);
  const nlohmann::json printed = nlohmann::json::parse(out_.str());
  EXPECT_EQ(printed["rank"], 1);
  EXPECT_EQ(printed["stream"], "stderr");
  EXPECT_EQ(printed["attempt"], 2);
  EXPECT_EQ(printed["lines"], nlohmann::json({"a", "b"}));
  // A rank's output has no times: --since is refused, not ignored.
  options.since = "10m";
  EXPECT_EQ(RunLogs(options, stub_.get(), env_), kExitUsage);
  EXPECT_NE(err_.str().find("--since does not apply to --rank"), std::string::npos) << err_.str();
}

TEST_F(CommandTest, LogsTailAndSinceAreSentWithTheFirstWatch) {
  service_.AddEvent("log", "hello");
  LogsOptions options;
  options.job_id = 42;
  options.tail = 20;
  options.since = "2026-12-05T11:00:00.5Z";
  EXPECT_EQ(RunLogs(options, stub_.get(), env_), kExitOk);
  EXPECT_EQ(out_.str(), "hello\n");
  const v1::WatchJobRequest request = service_.last_watch();
  EXPECT_EQ(request.tail(), 20);
  EXPECT_EQ(request.since_ms(), 1796468400500);
  options.since = "yesterday";
  EXPECT_EQ(RunLogs(options, stub_.get(), env_), kExitUsage);
  EXPECT_NE(err_.str().find("--since 'yesterday': expected a duration"), std::string::npos)
      << err_.str();
}

TEST(ParseSinceTest, DurationsAndTimes) {
  const int64_t now = 1796468400000;  // 2026-12-05T11:00:00Z
  EXPECT_EQ(*ParseSince("90s", now), now - 90000);
  EXPECT_EQ(*ParseSince("10m", now), now - 600000);
  EXPECT_EQ(*ParseSince("2h", now), now - 7200000);
  EXPECT_EQ(*ParseSince("1d", now), now - 86400000);
  EXPECT_EQ(*ParseSince("2026-12-05T11:00:00Z", now), now);
  EXPECT_EQ(*ParseSince("2026-12-05T10:59:59.25Z", now), now - 750);
  for (const char* bad :
       {"", "10", "-5m", "5w", "2026-12-05T11:00:00", "2026-13-05T11:00:00Z", "99999999999d"}) {
    EXPECT_EQ(ParseSince(bad, now).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

// The coordinator's --retain-finished takes the same durations.
TEST(ParseDurationTest, UnitsAndWhatIsNotADuration) {
  EXPECT_EQ(*ParseDurationMs("90s"), 90000);
  EXPECT_EQ(*ParseDurationMs("30d"), 30LL * 86400000);
  EXPECT_EQ(*ParseDurationMs("0m"), 0);
  EXPECT_EQ(*ParseDurationMs("99999999999d"), 99999999999LL * 86400000);  // 12 characters
  for (const char* bad : {"", "s", "10", "-5m", "5w", "1.5h", "999999999999d", "10 m"}) {
    EXPECT_FALSE(ParseDurationMs(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace dtrain::cli
