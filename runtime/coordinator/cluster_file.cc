// The cluster file parser: one walk over the YAML tree that collects every problem, with the
// message shape of job specs ("<source>:line:column: path: what").
#include "runtime/coordinator/cluster_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "runtime/spec/yaml_values.h"

namespace dtrain::coordinator {
namespace {

using yaml_values::Describe;
using yaml_values::IsPlain;
using yaml_values::ParseInt64;
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
  explicit ClusterParser(std::string source) : problems_(std::move(source)) {}
  ClusterParser(const ClusterParser&) = delete;
  ClusterParser& operator=(const ClusterParser&) = delete;

  StatusOr<ClusterFile> Parse(const std::string& text);

 private:
  // A field of a map: its value, the position to blame and its path ("hosts[1].slots").
  struct Value {
    YAML::Node node;
    YAML::Mark mark;
    std::string path;
  };

  void Error(const YAML::Mark& mark, const std::string& path, const std::string& what) {
    problems_.AddAt(mark, path, what);
  }
  void Expected(const Value& v, const std::string& expectation) {
    Error(v.mark, v.path, "expected " + expectation + ", got " + Describe(v.node));
  }
  // "cluster.yaml:6:11", for settings whose checking happens later, elsewhere.
  std::string Origin(const YAML::Mark& mark) const {
    return problems_.source() + ":" + std::to_string(mark.line + 1) + ":" +
           std::to_string(mark.column + 1);
  }
  // Reads a map with a fixed set of fields: non-scalar keys, unknown and duplicate fields are
  // reported here; each known field's value goes to `read(index in names, value)`. Returns which
  // fields were given, in the order of `names`.
  template <typename Read>
  std::vector<bool> ReadMap(const YAML::Node& map, const std::string& path,
                            const std::vector<const char*>& names, Read read);
  void Missing(const YAML::Node& map, const std::string& path, const char* name) {
    Error(map.Mark(), path.empty() ? name : path + "." + name, "required field is missing");
  }
  void ReadHosts(const Value& v);
  void ReadHost(const Value& v);
  void ReadLauncher(const Value& v);

  ClusterFile file_;
  ClusterConfig hosts_;
  yaml_values::Problems problems_;
  std::vector<int> name_lines_;  // 1-based line of each host's name, parallel to hosts_.hosts
};

template <typename Read>
std::vector<bool> ClusterParser::ReadMap(const YAML::Node& map, const std::string& path,
                                         const std::vector<const char*>& names, Read read) {
  auto child_path = [&](const std::string& key) { return path.empty() ? key : path + "." + key; };
  std::vector<int> first_line(names.size(), 0);  // 1-based line of each field seen; 0 = absent
  // yaml-cpp's iterator hands out its pair through a temporary proxy: copy the nodes (cheap,
  // shared handles) rather than bind references to the proxy's members.
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      Error(key.Mark(), path, "expected field names, got " + Describe(key) + " as a key");
      continue;
    }
    const std::string& name = key.Scalar();
    const std::string field_path = child_path(name.empty() ? "''" : Printable(name));
    size_t index = 0;
    while (index < names.size() && name != names[index]) ++index;
    if (index == names.size()) {
      std::string what = "unknown field; expected one of: ";
      for (size_t i = 0; i < names.size(); ++i)
        what += (i == 0 ? "" : ", ") + std::string(names[i]);
      Error(key.Mark(), field_path, what);
      continue;
    }
    if (first_line[index] != 0) {
      Error(key.Mark(), field_path,
            "duplicate field (first given at line " + std::to_string(first_line[index]) + ")");
      continue;
    }
    first_line[index] = key.Mark().line + 1;
    // An empty value ("slots:") is marked where the next token starts; blame the key instead.
    read(index, Value{value, value.IsNull() ? key.Mark() : value.Mark(), field_path});
  }
  std::vector<bool> given(names.size());
  for (size_t i = 0; i < names.size(); ++i) given[i] = first_line[i] != 0;
  return given;
}

void ClusterParser::ReadHosts(const Value& v) {
  if (!v.node.IsSequence() || v.node.size() == 0) {
    Expected(v, "a non-empty list of hosts");
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
    Error(v.mark, v.path,
          "expected at most " + std::to_string(std::numeric_limits<int>::max()) +
              " slots in total, got " + std::to_string(total));
  }
}

void ClusterParser::ReadHost(const Value& v) {
  if (!v.node.IsMap()) {
    Expected(v, "a map with 'name' and 'slots'");
    return;
  }
  Host host;
  bool ok = true;
  int name_line = 0;
  const std::vector<bool> given =
      ReadMap(v.node, v.path, {"name", "slots"}, [&](size_t field, const Value& f) {
        if (field == 0) {
          if (!f.node.IsScalar() || !IsValidHostName(f.node.Scalar())) {
            Expected(f, "a host name of letters, digits, '_', '.' and '-'");
            ok = false;
            return;
          }
          const std::string& name = f.node.Scalar();
          for (size_t i = 0; i < hosts_.hosts.size(); ++i) {
            if (hosts_.hosts[i].name == name) {
              Error(f.mark, f.path,
                    "duplicate host '" + Printable(name) + "' (first given at line " +
                        std::to_string(name_lines_[i]) + ")");
              ok = false;
              return;
            }
          }
          host.name = name;
          name_line = f.mark.line + 1;
          return;
        }
        long long value = 0;
        bool overflow = false;
        const int kMax = std::numeric_limits<int>::max();
        if (!IsPlain(f.node) || !ParseInt64(f.node.Scalar(), &value, &overflow)) {
          Expected(f, "an integer >= 1");
          ok = false;
        } else if (overflow || value > kMax) {
          Expected(f, "an integer in [1, " + std::to_string(kMax) + "]");
          ok = false;
        } else if (value < 1) {
          Expected(f, "an integer >= 1");
          ok = false;
        } else {
          host.slots = static_cast<int>(value);
        }
      });
  if (!given[0]) Missing(v.node, v.path, "name");
  if (!given[1]) Missing(v.node, v.path, "slots");
  // A host missing a field was reported above; it is kept out of the duplicate check.
  if (ok && given[0] && given[1]) {
    hosts_.hosts.push_back(std::move(host));
    name_lines_.push_back(name_line);
  }
}

// The section's fields are the backend's to check (it alone knows them); here only their shape:
// scalar names, scalar values, no duplicates.
void ClusterParser::ReadLauncher(const Value& v) {
  if (!v.node.IsMap()) {
    Expected(v, "a map with 'backend' and the backend's settings");
    return;
  }
  std::map<std::string, int> first_line;
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      Error(key.Mark(), v.path, "expected setting names, got " + Describe(key) + " as a key");
      continue;
    }
    const std::string& name = key.Scalar();
    const Value field{value, value.IsNull() ? key.Mark() : value.Mark(),
                      v.path + "." + (name.empty() ? "''" : Printable(name))};
    auto [seen, inserted] = first_line.emplace(name, key.Mark().line + 1);
    if (!inserted) {
      Error(key.Mark(), field.path,
            "duplicate field (first given at line " + std::to_string(seen->second) + ")");
      continue;
    }
    if (!value.IsScalar() || value.Scalar().empty()) {
      Expected(field, name == "backend" ? "a launcher name" : "a non-empty string");
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
      yaml_values::LoadSingleMap(text, "expected a map with 'hosts'", &problems_);
  if (root) {
    const std::vector<bool> given =
        ReadMap(*root, "", {"hosts", "launcher"}, [&](size_t field, const Value& f) {
          if (field == 0) {
            ReadHosts(f);
          } else {
            ReadLauncher(f);
          }
        });
    // Without a launcher section the file exists only to list hosts.
    if (!given[0] && !given[1]) Missing(*root, "", "hosts");
    if (given[0]) file_.hosts = std::move(hosts_);
  }
  if (!problems_.empty()) return problems_.ToStatus();
  return std::move(file_);
}

}  // namespace

StatusOr<ClusterFile> ParseClusterFile(const std::string& yaml_text,
                                       const std::string& source_name) {
  ClusterParser parser(source_name);
  return parser.Parse(yaml_text);
}

}  // namespace dtrain::coordinator
