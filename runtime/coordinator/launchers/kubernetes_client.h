// A small client of the Kubernetes API server (libcurl + nlohmann-json), holding exactly the
// calls the Kubernetes launcher makes: MPIJobs (create, get, patch suspend, watch, delete), pods
// (list by label, the launcher's log) and nodes (list, for capacity). Objects go in and come
// out as JSON text; what they mean is kubernetes_mpijob.h's business.
//
// Credentials come from the pod's service account (in-cluster) or from a kubeconfig file.
// Errors name the request ("POST /apis/kubeflow.org/v2beta1/namespaces/ml/mpijobs") and the
// server's own Status message, with the HTTP status mapped to a dtrain StatusCode (404
// NOT_FOUND, 409 ALREADY_EXISTS, 410 ABORTED, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 422 and
// 400 INVALID_ARGUMENT, 5xx and transport failures UNAVAILABLE).
//
// Thread-safety: every method may be called from several threads at once (each call has its
// own connection).
#ifndef DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_KUBERNETES_CLIENT_H_
#define DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_KUBERNETES_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "runtime/common/status.h"

namespace dtrain::coordinator {

struct KubernetesCredentials {
  std::string server;  // "https://10.0.0.1:443"; http:// only for tests on 127.0.0.1
  std::string token;   // bearer token; empty when a client certificate is used
  // The cluster's CA, as a file or as PEM text (a kubeconfig's certificate-authority-data).
  std::string ca_file;
  std::string ca_pem;
  // A client certificate and key (kubeconfig), as files or PEM text.
  std::string client_cert_file, client_key_file;
  std::string client_cert_pem, client_key_pem;
  std::string origin;  // where they came from, for messages ("kubeconfig ~/.kube/config")
};

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

// The pod's service account: KUBERNETES_SERVICE_HOST/PORT and <dir>/token, <dir>/ca.crt.
// FAILED_PRECONDITION naming what is missing when not running in a pod.
StatusOr<KubernetesCredentials> InClusterCredentials(const std::string& dir = kServiceAccountDir);
// The current context of a kubeconfig file (or `context` when given): its cluster's server and
// CA, its user's token or client certificate. INVALID_ARGUMENT naming the file and field.
StatusOr<KubernetesCredentials> KubeconfigCredentials(const std::string& path,
                                                      const std::string& context = "");

// One event of a watch: "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or "ERROR", and the object.
struct WatchEvent {
  std::string type;
  std::string object;  // JSON text
};

class KubernetesClient {
 public:
  explicit KubernetesClient(KubernetesCredentials credentials);

  // Returns the created object. ALREADY_EXISTS when an MPIJob of that name exists.
  StatusOr<std::string> CreateMpiJob(const std::string& ns, const std::string& mpijob_json);
  StatusOr<std::string> GetMpiJob(const std::string& ns, const std::string& name);
  // A JSON merge patch of spec.runPolicy.suspend.
  Status SetMpiJobSuspended(const std::string& ns, const std::string& name, bool suspend);
  // A JSON merge patch (RFC 7386) of the MPIJob, e.g. {"spec": {...}}.
  Status PatchMpiJob(const std::string& ns, const std::string& name, const std::string& patch);
  // Deletes it and, in the background, its pods. Deleting one that is gone is OK.
  Status DeleteMpiJob(const std::string& ns, const std::string& name);
  // Follows one MPIJob's changes from `resource_version` ("" = its current state first) until
  // `on_event` returns false, the server ends the watch (after at most `timeout_seconds`), or
  // an error. A watch the server ends normally is OK.
  Status WatchMpiJob(const std::string& ns, const std::string& name,
                     const std::string& resource_version, int timeout_seconds,
                     const std::function<bool(const WatchEvent&)>& on_event);

  // A PodList of the pods whose labels match `label_selector` ("dtrain.io/job-id=7").
  StatusOr<std::string> ListPods(const std::string& ns, const std::string& label_selector);
  // A container's log. With `follow`, the server keeps sending what it writes until it exits;
  // `on_data` receives the bytes as they come and returns false to stop reading.
  Status StreamPodLog(const std::string& ns, const std::string& pod, const std::string& container,
                      bool follow, const std::function<bool(const std::string&)>& on_data);
  // A NodeList of every node.
  StatusOr<std::string> ListNodes();

  // Aborts the calls in flight (within about a second) and fails every later one with
  // CANCELLED: for a launcher shutting down while its followers wait on long watches and logs.
  void Cancel() { cancelled_.store(true); }

  // Bodies larger than this are refused rather than held (a NodeList of 5000 nodes is ~50 MB).
  static constexpr size_t kMaxBodyBytes = 256u << 20;
  // One line of a watch (one object).
  static constexpr size_t kMaxWatchLineBytes = 16u << 20;

 private:
  struct Request;
  // Runs one request; the body goes to `on_data` when set (streams), else into *body.
  Status Perform(const Request& request, std::string* body,
                 const std::function<bool(const std::string&)>& on_data);

  const KubernetesCredentials credentials_;
  std::atomic<bool> cancelled_{false};
};

// "a-b/c d" -> "a-b%2Fc%20d" (RFC 3986 unreserved characters kept).
std::string UrlEncode(const std::string& text);

}  // namespace dtrain::coordinator

#endif  // DTRAIN_RUNTIME_COORDINATOR_LAUNCHERS_KUBERNETES_CLIENT_H_
