#include "runtime/coordinator/launchers/kubernetes_client.h"

#include <curl/curl.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

namespace dtrain::coordinator {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr long kConnectTimeoutSeconds = 10;
// A plain request; watches and followed logs set their own (none: the server ends them).
constexpr long kRequestTimeoutSeconds = 60;
constexpr char kMpiJobs[] = "/apis/kubeflow.org/v2beta1/namespaces/";

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

StatusOr<std::string> ReadSmallFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FailedPrecondition("cannot read " + what + " '" + path + "'");
  std::ostringstream data;
  data << in.rdbuf();
  return data.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

StatusOr<std::string> Base64Decode(const std::string& text, const std::string& where) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    const size_t v = kAlphabet.find(c);
    if (v == std::string::npos) return InvalidArgument(where + ": not base64");
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

// The object of the `list` (clusters, users, contexts) entry named `name`.
YAML::Node Named(const YAML::Node& config, const char* list, const std::string& name,
                 const char* inner) {
  const YAML::Node entries = config[list];
  if (!entries || !entries.IsSequence()) return YAML::Node();
  for (const YAML::Node& entry : entries) {
    if (entry.IsMap() && entry["name"] && entry["name"].as<std::string>("") == name) {
      return entry[inner];
    }
  }
  return YAML::Node();
}

std::string Text(const YAML::Node& node, const char* key) {
  if (!node || !node.IsMap() || !node[key] || !node[key].IsScalar()) return "";
  return node[key].as<std::string>();
}

StatusCode CodeForHttp(long status) {
  switch (status) {
    case 400:
    case 422:
      return StatusCode::kInvalidArgument;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kNotFound;
    case 409:
      return StatusCode::kAlreadyExists;
    case 410:  // Gone: a watch's resource version expired; start again from a fresh GET
      return StatusCode::kAborted;
    case 429:
      return StatusCode::kResourceExhausted;
    default:
      return status >= 500 ? StatusCode::kUnavailable : StatusCode::kUnknown;
  }
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// What the write callback fills.
struct Sink {
  std::string* body = nullptr;
  const std::function<bool(const std::string&)>* on_data = nullptr;
  bool stopped = false;  // on_data returned false
  bool too_large = false;
  std::string error_body;  // a non-2xx response's body (streams' bodies go to on_data)
  long status = 0;
  CURL* curl = nullptr;
};

int Progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(user)->load() ? 1 : 0;  // non-zero aborts
}

size_t Write(char* data, size_t size, size_t count, void* user) {
  Sink* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->status == 0) curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &sink->status);
  std::string* target = sink->body;
  if (sink->status < 200 || sink->status >= 300 || sink->on_data == nullptr) {
    target = sink->status >= 200 && sink->status < 300 ? sink->body : &sink->error_body;
    if (target->size() + n > KubernetesClient::kMaxBodyBytes) {
      sink->too_large = true;
      return 0;
    }
    target->append(data, n);
    return n;
  }
  if (!(*sink->on_data)(std::string(data, n))) {
    sink->stopped = true;
    return 0;  // aborts the transfer
  }
  return n;
}

}  // namespace

std::string UrlEncode(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

StatusOr<KubernetesCredentials> InClusterCredentials(const std::string& dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
    return FailedPrecondition(
        "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
        "are not set (give the launcher a kubeconfig instead)");
  }
  KubernetesCredentials c;
  const std::string h = host;
  // An IPv6 service address needs brackets in a URL.
  c.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
  DTRAIN_ASSIGN_OR_RETURN(std::string token,
                          ReadSmallFile(dir + "/token", "service-account token"));
  c.token = Trim(token);
  c.ca_file = dir + "/ca.crt";
  if (!fs::exists(c.ca_file)) {
    return FailedPrecondition("service-account CA '" + c.ca_file + "' does not exist");
  }
  c.origin = "in-cluster service account (" + dir + ")";
  return c;
}

StatusOr<KubernetesCredentials> KubeconfigCredentials(const std::string& path,
                                                      const std::string& context) {
  YAML::Node config;
  try {
    config = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("kubeconfig '" + path + "': " + e.what());
  }
  const std::string where = "kubeconfig '" + path + "'";
  const std::string name = context.empty() ? Text(config, "current-context") : context;
  if (name.empty()) return InvalidArgument(where + ": no current-context and none given");
  const YAML::Node ctx = Named(config, "contexts", name, "context");
  if (!ctx.IsDefined() || !ctx.IsMap())
    return InvalidArgument(where + ": no context named '" + name + "'");
  const std::string cluster_name = Text(ctx, "cluster");
  const std::string user_name = Text(ctx, "user");
  const YAML::Node cluster = Named(config, "clusters", cluster_name, "cluster");
  if (!cluster.IsDefined() || !cluster.IsMap())
    return InvalidArgument(where + ": no cluster named '" + cluster_name + "'");
  // A user entry may be empty (a cluster that needs no credentials).
  const YAML::Node user = Named(config, "users", user_name, "user");
  KubernetesCredentials c;
  c.origin = where + " context '" + name + "'";
  c.server = Text(cluster, "server");
  if (c.server.rfind("https://", 0) != 0 && c.server.rfind("http://", 0) != 0) {
    return InvalidArgument(where + ": clusters[" + cluster_name +
                           "].cluster.server must be an http(s) URL, got '" + c.server + "'");
  }
  // Relative paths in a kubeconfig are relative to the file.
  const fs::path base = fs::path(path).parent_path();
  auto file = [&](const std::string& p) {
    return p.empty() || fs::path(p).is_absolute() ? p : (base / p).string();
  };
  auto data = [&](const YAML::Node& node, const char* key,
                  const std::string& field) -> StatusOr<std::string> {
    const std::string text = Text(node, key);
    if (text.empty()) return std::string();
    return Base64Decode(text, where + ": " + field);
  };
  c.ca_file = file(Text(cluster, "certificate-authority"));
  DTRAIN_ASSIGN_OR_RETURN(c.ca_pem,
                          data(cluster, "certificate-authority-data",
                               "clusters[" + cluster_name + "].certificate-authority-data"));
  c.token = Text(user, "token");
  if (c.token.empty() && !Text(user, "tokenFile").empty()) {
    DTRAIN_ASSIGN_OR_RETURN(std::string token,
                            ReadSmallFile(file(Text(user, "tokenFile")), "token file"));
    c.token = Trim(token);
  }
  c.client_cert_file = file(Text(user, "client-certificate"));
  c.client_key_file = file(Text(user, "client-key"));
  const std::string u = "users[" + user_name + "].";
  DTRAIN_ASSIGN_OR_RETURN(c.client_cert_pem,
                          data(user, "client-certificate-data", u + "client-certificate-data"));
  DTRAIN_ASSIGN_OR_RETURN(c.client_key_pem, data(user, "client-key-data", u + "client-key-data"));
  if (user && user.IsMap() && user["exec"]) {
    return InvalidArgument(where + ": " + u +
                           "exec credential plugins are not supported; use a token or a client "
                           "certificate (e.g. a service account's token)");
  }
  return c;
}

struct KubernetesClient::Request {
  Request(std::string m, std::string p, std::string q = "", std::string b = "")
      : method(std::move(m)), path(std::move(p)), query(std::move(q)), body(std::move(b)) {}
  std::string method;
  std::string path;   // "/api/v1/nodes"
  std::string query;  // "watch=true&..." (already encoded), may be empty
  std::string body;
  std::string content_type = "application/json";
  bool stream = false;  // no overall timeout
};

KubernetesClient::KubernetesClient(KubernetesCredentials credentials)
    : credentials_(std::move(credentials)) {
  GlobalInit();
}

Status KubernetesClient::Perform(const Request& r, std::string* body,
                                 const std::function<bool(const std::string&)>& on_data) {
  const std::string what = r.method + " " + r.path;
  if (cancelled_.load()) return Status(StatusCode::kCancelled, what + ": the client was cancelled");
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Internal(what + ": curl_easy_init failed");
  const std::string url = credentials_.server + r.path + (r.query.empty() ? "" : "?" + r.query);
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, r.stream ? 0L : kRequestTimeoutSeconds);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &cancelled_);
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto header = [&](const std::string& h) {
    headers.reset(curl_slist_append(headers.release(), h.c_str()));
  };
  header("Accept: application/json");
  if (!credentials_.token.empty()) header("Authorization: Bearer " + credentials_.token);
  if (!r.body.empty() || r.method == "POST" || r.method == "PATCH") {
    header("Content-Type: " + r.content_type);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r.body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(r.body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  // TLS: the cluster's CA only, and a client certificate when the kubeconfig has one.
  curl_blob ca{const_cast<char*>(credentials_.ca_pem.data()), credentials_.ca_pem.size(),
               CURL_BLOB_NOCOPY};
  curl_blob cert{const_cast<char*>(credentials_.client_cert_pem.data()),
                 credentials_.client_cert_pem.size(), CURL_BLOB_NOCOPY};
  curl_blob key{const_cast<char*>(credentials_.client_key_pem.data()),
                credentials_.client_key_pem.size(), CURL_BLOB_NOCOPY};
  if (!credentials_.ca_pem.empty()) curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  if (!credentials_.ca_file.empty())
    curl_easy_setopt(c, CURLOPT_CAINFO, credentials_.ca_file.c_str());
  if (!credentials_.client_cert_pem.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
  if (!credentials_.client_cert_file.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, credentials_.client_cert_file.c_str());
  }
  if (!credentials_.client_key_pem.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
  if (!credentials_.client_key_file.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLKEY, credentials_.client_key_file.c_str());
  }
  std::string ignored;
  Sink sink;
  sink.body = body != nullptr ? body : &ignored;
  sink.on_data = on_data ? &on_data : nullptr;
  sink.curl = c;
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (sink.too_large) {
    return Status(StatusCode::kResourceExhausted,
                  what + ": response larger than " + std::to_string(kMaxBodyBytes) + " bytes");
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK) {
    return Status(StatusCode::kCancelled, what + ": the client was cancelled");
  }
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && sink.stopped)) {
    return Unavailable(what + " on " + credentials_.server + ": " +
                       (error[0] != '\0' ? error : curl_easy_strerror(rc)));
  }
  if (status >= 200 && status < 300) return Status::Ok();
  // The API server explains itself in a Status object: {"reason":"AlreadyExists","message":...}.
  const json s = json::parse(sink.error_body, nullptr, /*allow_exceptions=*/false);
  std::string message = sink.error_body.substr(0, 500);
  if (s.is_object() && s.contains("message") && s["message"].is_string()) {
    message = s["message"].get<std::string>();
    if (s.contains("reason") && s["reason"].is_string()) {
      message = s["reason"].get<std::string>() + ": " + message;
    }
  }
  return Status(CodeForHttp(status), what + ": HTTP " + std::to_string(status) + " " + message);
}

StatusOr<std::string> KubernetesClient::CreateMpiJob(const std::string& ns,
                                                     const std::string& mpijob_json) {
  std::string body;
  DTRAIN_RETURN_IF_ERROR(
      Perform({"POST", kMpiJobs + ns + "/mpijobs", "", mpijob_json}, &body, nullptr));
  return body;
}

StatusOr<std::string> KubernetesClient::GetMpiJob(const std::string& ns, const std::string& name) {
  std::string body;
  DTRAIN_RETURN_IF_ERROR(Perform({"GET", kMpiJobs + ns + "/mpijobs/" + name}, &body, nullptr));
  return body;
}

Status KubernetesClient::SetMpiJobSuspended(const std::string& ns, const std::string& name,
                                            bool suspend) {
  return PatchMpiJob(ns, name, json{{"spec", {{"runPolicy", {{"suspend", suspend}}}}}}.dump());
}

Status KubernetesClient::PatchMpiJob(const std::string& ns, const std::string& name,
                                     const std::string& patch) {
  Request r{"PATCH", kMpiJobs + ns + "/mpijobs/" + name, "", patch};
  r.content_type = "application/merge-patch+json";
  return Perform(r, nullptr, nullptr);
}

Status KubernetesClient::DeleteMpiJob(const std::string& ns, const std::string& name) {
  Status s = Perform(
      {"DELETE", kMpiJobs + ns + "/mpijobs/" + name, "",
       json{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", "Background"}}
           .dump()},
      nullptr, nullptr);
  return s.code() == StatusCode::kNotFound ? Status::Ok() : s;
}

Status KubernetesClient::WatchMpiJob(const std::string& ns, const std::string& name,
                                     const std::string& resource_version, int timeout_seconds,
                                     const std::function<bool(const WatchEvent&)>& on_event) {
  Request r{
      "GET", kMpiJobs + ns + "/mpijobs",
      "fieldSelector=" + UrlEncode("metadata.name=" + name) + "&watch=true" +
          (resource_version.empty() ? "" : "&resourceVersion=" + UrlEncode(resource_version)) +
          "&timeoutSeconds=" + std::to_string(timeout_seconds)};
  r.stream = true;
  std::string pending;
  Status event_error;
  auto on_data = [&](const std::string& data) {
    pending += data;
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      const std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      if (line.empty()) continue;
      const json e = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!e.is_object() || !e.contains("type") || !e["type"].is_string() ||
          !e.contains("object")) {
        event_error = DataLoss("watch of MPIJob " + ns + "/" + name +
                               ": not a watch event: " + line.substr(0, 200));
        return false;
      }
      WatchEvent event{e["type"].get<std::string>(), e["object"].dump()};
      if (event.type == "ERROR") {
        // The object is a Status, e.g. 410 Gone: the resource version is too old.
        const json& s = e["object"];
        const int code =
            s.contains("code") && s["code"].is_number_integer() ? s["code"].get<int>() : 0;
        event_error =
            Status(CodeForHttp(code), "watch of MPIJob " + ns + "/" + name + ": " +
                                          (s.contains("message") && s["message"].is_string()
                                               ? s["message"].get<std::string>()
                                               : s.dump()));
        return false;
      }
      if (!on_event(event)) return false;
    }
    if (pending.size() > kMaxWatchLineBytes) {
      event_error = Status(StatusCode::kResourceExhausted,
                           "watch of MPIJob " + ns + "/" + name + ": an event over " +
                               std::to_string(kMaxWatchLineBytes) + " bytes");
      return false;
    }
    return true;
  };
  DTRAIN_RETURN_IF_ERROR(Perform(r, nullptr, on_data));
  return event_error;
}

StatusOr<std::string> KubernetesClient::ListPods(const std::string& ns,
                                                 const std::string& label_selector) {
  std::string body;
  DTRAIN_RETURN_IF_ERROR(Perform(
      {"GET", "/api/v1/namespaces/" + ns + "/pods", "labelSelector=" + UrlEncode(label_selector)},
      &body, nullptr));
  return body;
}

Status KubernetesClient::StreamPodLog(const std::string& ns, const std::string& pod,
                                      const std::string& container, bool follow,
                                      const std::function<bool(const std::string&)>& on_data) {
  Request r{"GET", "/api/v1/namespaces/" + ns + "/pods/" + pod + "/log",
            "container=" + UrlEncode(container) + (follow ? "&follow=true" : "")};
  r.stream = follow;
  return Perform(r, nullptr, on_data);
}

StatusOr<std::string> KubernetesClient::ListNodes() {
  std::string body;
  DTRAIN_RETURN_IF_ERROR(Perform({"GET", "/api/v1/nodes"}, &body, nullptr));
  return body;
}

}  // namespace dtrain::coordinator
