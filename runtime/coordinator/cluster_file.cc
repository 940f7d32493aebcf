// The cluster file parser: one walk over the YAML tree that collects every problem, with the
// message shape of job specs ("<source>:line:column: path: what").
#include "runtime/coordinator/cluster_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "runtime/spec/spec_reader.h"
#include "runtime/spec/yaml_values.h"

namespace dtrain::coordinator {
namespace {

using Value = SpecReader::Value;
using yaml_values::Describe;
using yaml_values::Printable;

// Host names go into mpirun hostfiles and "a:2,b:1" placements: no spaces, ':' or ','.
bool IsValidHostName(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

class ClusterParser {
 public:
  explicit ClusterParser(std::string source) : r_(std::move(source)) {}
  ClusterParser(const ClusterParser&) = delete;
  ClusterParser& operator=(const ClusterParser&) = delete;

  StatusOr<ClusterFile> Parse(const std::string& text);

 private:
  // "cluster.yaml:6:11", for settings whose checking happens later, elsewhere.
  std::string Origin(const YAML::Mark& mark) {
    return r_.problems().source() + ":" + std::to_string(mark.line + 1) + ":" +
           std::to_string(mark.column + 1);
  }
  void ReadHosts(const Value& v);
  void ReadHost(const Value& v);
  void ReadLauncher(const Value& v);

  // The same field-table walk and messages as job specs (runtime/spec/spec_reader.h).
  SpecReader r_;
  ClusterFile file_;
  ClusterConfig hosts_;
  std::vector<int> name_lines_;  // 1-based line of each host's name, parallel to hosts_.hosts
};

void ClusterParser::ReadHosts(const Value& v) {
  if (!v.node.IsSequence() || v.node.size() == 0) {
    r_.Expected(v, "a non-empty list of hosts");
    return;
  }
  for (size_t i = 0; i < v.node.size(); ++i) {
    const YAML::Node item = v.node[i];
    ReadHost(
        Value{item, item.IsNull() ? v.mark : item.Mark(), v.path + "[" + std::to_string(i) + "]"});
  }
  long long total = 0;
  for (const Host& h : hosts_.hosts) total += h.slots;
  if (total > std::numeric_limits<int>::max()) {
    r_.Error(v.mark, v.path,
             "expected at most " + std::to_string(std::numeric_limits<int>::max()) +
                 " slots in total, got " + std::to_string(total));
  }
}

void ClusterParser::ReadHost(const Value& v) {
  if (!v.node.IsMap()) {
    r_.Expected(v, "a map with 'name' and 'slots'");
    return;
  }
  Host host;
  bool named = false, sized = false;
  int name_line = 0;
  r_.ReadMap(
      v, {
             {"name", true,
              [&](const Value& f) {
                if (!f.node.IsScalar() || !IsValidHostName(f.node.Scalar())) {
                  r_.Expected(f, "a host name of letters, digits, '_', '.' and '-'");
                  return;
                }
                const std::string& name = f.node.Scalar();
                for (size_t i = 0; i < hosts_.hosts.size(); ++i) {
                  if (hosts_.hosts[i].name == name) {
                    r_.Error(f.mark, f.path,
                             "duplicate host '" + Printable(name) + "' (first given at line " +
                                 std::to_string(name_lines_[i]) + ")");
                    return;
                  }
                }
                host.name = name;
                name_line = f.mark.line + 1;
                named = true;
              }},
             {"slots", true,
              [&](const Value& f) { sized = r_.ReadInt(f, 1, SpecReader::kMaxInt, &host.slots); }},
         });
  // A host with a missing or bad field was reported above; it is kept out of the duplicate
  // check.
  if (named && sized) {
    hosts_.hosts.push_back(std::move(host));
    name_lines_.push_back(name_line);
  }
}

// The section's fields are the backend's to check (it alone knows them); here only their shape:
// scalar names, scalar values, no duplicates.
void ClusterParser::ReadLauncher(const Value& v) {
  if (!v.node.IsMap()) {
    r_.Expected(v, "a map with 'backend' and the backend's settings");
    return;
  }
  std::map<std::string, int> first_line;
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      r_.Error(key.Mark(), v.path, "expected setting names, got " + Describe(key) + " as a key");
      continue;
    }
    const std::string& name = key.Scalar();
    const Value field{value, value.IsNull() ? key.Mark() : value.Mark(),
                      v.path + "." + (name.empty() ? "''" : Printable(name))};
    auto [seen, inserted] = first_line.emplace(name, key.Mark().line + 1);
    if (!inserted) {
      r_.Error(key.Mark(), field.path,
               "duplicate field (first given at line " + std::to_string(seen->second) + ")");
      continue;
    }
    if (!value.IsScalar() || value.Scalar().empty()) {
      r_.Expected(field, name == "backend" ? "a launcher name" : "a non-empty string");
      continue;
    }
    ConfigValue setting{value.Scalar(), Origin(field.mark)};
    if (name == "backend") {
      file_.launcher.backend = std::move(setting);
    } else {
      file_.launcher.settings.emplace(name, std::move(setting));
    }
  }
}

StatusOr<ClusterFile> ClusterParser::Parse(const std::string& text) {
  const std::optional<YAML::Node> root =
      yaml_values::LoadSingleMap(text, "expected a map with 'hosts'", &r_.problems());
  if (root) {
    r_.ReadMap(Value{*root, root->Mark(), ""},
               {
                   {"hosts", false, [&](const Value& f) { ReadHosts(f); }},
                   {"launcher", false, [&](const Value& f) { ReadLauncher(f); }},
               });
    // Without a launcher section the file exists only to list hosts.
    if (!r_.Given("hosts") && !r_.Given("launcher")) {
      r_.Error(root->Mark(), "hosts", "required field is missing");
    }
    if (r_.Given("hosts")) file_.hosts = std::move(hosts_);
    r_.ReportUnknownFields(nullptr);
  }
  if (!r_.problems().empty()) return r_.problems().ToStatus();
  return std::move(file_);
}

}  // namespace

StatusOr<ClusterFile> ParseClusterFile(const std::string& yaml_text,
                                       const std::string& source_name) {
  ClusterParser parser(source_name);
  return parser.Parse(yaml_text);
}

}  // namespace dtrain::coordinator
