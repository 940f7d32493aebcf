// The API calls of the Kubernetes client against a scripted API server on 127.0.0.1
// (tests/k8s/exchanges/client_calls.json): method, path, query, body and headers of each request
// are checked there, in order; responses include a watch stream, server errors and a watch
// ERROR event. Credentials come from a kubeconfig and from a service-account directory.
#include "runtime/coordinator/launchers/kubernetes_client.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/k8s/scripted_api_server.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain::coordinator {
namespace {

using nlohmann::json;

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string Kubeconfig(const testing::TempDir& dir, const std::string& server) {
  const std::string path = dir.path().string() + "/config";
  WriteFile(path,
            "apiVersion: v1\nkind: Config\ncurrent-context: ml\n"
            "clusters:\n- name: other\n  cluster: {server: 'https://10.9.9.9'}\n"
            "- name: test\n  cluster:\n    server: " +
                server +
                "\n    certificate-authority: ca.pem\n"
                "contexts:\n- name: ml\n  context: {cluster: test, user: coordinator}\n"
                "users:\n- name: coordinator\n  user:\n    token: t0ken-abc\n");
  WriteFile(dir.path().string() + "/ca.pem", "not used over http\n");
  return path;
}

TEST(KubernetesClientTest, CallsMatchTheRecordedExchange) {
  testing::ScriptedApiServer server("tests/k8s/exchanges/client_calls.json");
  testing::TempDir dir;
  StatusOr<KubernetesCredentials> credentials =
      KubeconfigCredentials(Kubeconfig(dir, server.url()));
  ASSERT_OK(credentials);
  EXPECT_EQ(credentials->server, server.url());
  EXPECT_EQ(credentials->ca_file, dir.path().string() + "/ca.pem");
  credentials->ca_file.clear();  // plain HTTP to the scripted server
  KubernetesClient client(*credentials);

  const json job = {{"apiVersion", "kubeflow.org/v2beta1"},
                    {"kind", "MPIJob"},
                    {"metadata", {{"name", "dtrain-7-1"}, {"namespace", "ml"}}},
                    {"spec",
                     {{"slotsPerWorker", 2},
                      {"runPolicy", {{"suspend", true}}},
                      {"mpiReplicaSpecs", json::object()}}}};
  StatusOr<std::string> created = client.CreateMpiJob("ml", job.dump());
  for (const std::string& problem : server.Problems()) {
    if (problem.rfind("exchange 0 ", 0) == 0 || problem.find("threw") != std::string::npos) {
      ADD_FAILURE() << problem;
    }
  }
  ASSERT_OK(created);
  EXPECT_EQ(json::parse(*created)["metadata"]["resourceVersion"], "100");

  StatusOr<std::string> again = client.CreateMpiJob("ml", job.dump());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().message(),
            "POST /apis/kubeflow.org/v2beta1/namespaces/ml/mpijobs: HTTP 409 AlreadyExists: "
            "mpijobs.kubeflow.org \"dtrain-7-1\" already exists");

  StatusOr<std::string> got = client.GetMpiJob("ml", "dtrain-7-1");
  ASSERT_OK(got);
  EXPECT_EQ(json::parse(*got)["status"]["conditions"][1]["type"], "Suspended");

  EXPECT_OK(client.SetMpiJobSuspended("ml", "dtrain-7-1", false));

  std::vector<std::string> seen;
  EXPECT_OK(client.WatchMpiJob("ml", "dtrain-7-1", "100", 30, [&](const WatchEvent& e) {
    const json object = json::parse(e.object);
    seen.push_back(e.type + " " + object["status"]["conditions"].back()["type"].get<std::string>());
    return true;
  }));
  EXPECT_EQ(seen,
            (std::vector<std::string>{"ADDED Created", "MODIFIED Running", "MODIFIED Failed"}));

  Status expired = client.WatchMpiJob("ml", "dtrain-7-1", "1", 30, [](const WatchEvent&) {
    ADD_FAILURE() << "an ERROR event is not an event";
    return true;
  });
  EXPECT_EQ(expired.code(), StatusCode::kAborted) << expired.ToString();  // 410 Gone
  EXPECT_NE(expired.message().find("too old resource version: 1 (100)"), std::string::npos)
      << expired.message();

  StatusOr<std::string> pods = client.ListPods("ml", "dtrain.io/job-id=7,dtrain.io/attempt=1");
  ASSERT_OK(pods);
  EXPECT_EQ(json::parse(*pods)["items"].size(), 1u);

  std::string log;
  EXPECT_OK(client.StreamPodLog("ml", "dtrain-7-1-launcher-x2x", "launcher", true,
                                [&](const std::string& data) {
                                  log += data;
                                  return true;
                                }));
  EXPECT_EQ(log, "{\"event\":\"started\",\"rank\":0}\nepoch 1 step 10 loss 2.30\n");

  StatusOr<std::string> nodes = client.ListNodes();
  ASSERT_FALSE(nodes.ok());
  EXPECT_EQ(nodes.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(nodes.status().message(),
            "GET /api/v1/nodes: HTTP 500 InternalError: etcdserver: request timed out");
  nodes = client.ListNodes();
  ASSERT_OK(nodes);

  EXPECT_OK(client.DeleteMpiJob("ml", "dtrain-7-1"));
  EXPECT_OK(client.DeleteMpiJob("ml", "dtrain-7-1"));  // 404: already gone

  for (const std::string& problem : server.Problems()) ADD_FAILURE() << problem;
}

TEST(KubernetesClientTest, AWatchCanBeStoppedByItsCaller) {
  testing::ScriptedApiServer server("tests/k8s/exchanges/client_calls.json");
  KubernetesCredentials credentials;
  credentials.server = server.url();
  credentials.token = "t0ken-abc";
  KubernetesClient client(credentials);
  // Skip to the watch: the first exchanges are answered as scripted.
  const json job = {{"apiVersion", "kubeflow.org/v2beta1"},
                    {"kind", "MPIJob"},
                    {"metadata", {{"name", "dtrain-7-1"}, {"namespace", "ml"}}},
                    {"spec",
                     {{"slotsPerWorker", 2},
                      {"runPolicy", {{"suspend", true}}},
                      {"mpiReplicaSpecs", json::object()}}}};
  ASSERT_OK(client.CreateMpiJob("ml", job.dump()));
  ASSERT_FALSE(client.CreateMpiJob("ml", job.dump()).ok());
  ASSERT_OK(client.GetMpiJob("ml", "dtrain-7-1"));
  ASSERT_OK(client.SetMpiJobSuspended("ml", "dtrain-7-1", false));
  int events = 0;
  EXPECT_OK(client.WatchMpiJob("ml", "dtrain-7-1", "100", 30, [&](const WatchEvent&) {
    return ++events < 2;  // stop at the Running event
  }));
  EXPECT_EQ(events, 2);
}

TEST(KubernetesClientTest, UnreachableServerIsUnavailableNamingIt) {
  KubernetesCredentials credentials;
  credentials.server = "http://127.0.0.1:1";  // nothing listens on port 1
  KubernetesClient client(credentials);
  StatusOr<std::string> nodes = client.ListNodes();
  ASSERT_FALSE(nodes.ok());
  EXPECT_EQ(nodes.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(nodes.status().message().find("GET /api/v1/nodes on http://127.0.0.1:1"),
            std::string::npos)
      << nodes.status().message();
}

TEST(KubernetesClientTest, InClusterCredentialsFromTheServiceAccount) {
  testing::TempDir dir;
  WriteFile(dir.path().string() + "/token", "sa-token\n");
  WriteFile(dir.path().string() + "/ca.crt", "-----BEGIN CERTIFICATE-----\n");
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  StatusOr<KubernetesCredentials> none = InClusterCredentials(dir.path());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("KUBERNETES_SERVICE_HOST"), std::string::npos);
  ::setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  StatusOr<KubernetesCredentials> c = InClusterCredentials(dir.path());
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_OK(c);
  EXPECT_EQ(c->server, "https://[fd00::1]:443");
  EXPECT_EQ(c->token, "sa-token");
  EXPECT_EQ(c->ca_file, dir.path().string() + "/ca.crt");
}

TEST(KubernetesClientTest, KubeconfigProblemsNameTheFileAndField) {
  testing::TempDir dir;
  const std::string path = dir.path().string() + "/config";
  WriteFile(path,
            "current-context: ml\nclusters:\n- name: c\n  cluster:\n    server: https://k:6443\n"
            "    certificate-authority-data: LS0tLS1CRUdJTg==\n"
            "contexts:\n- name: ml\n  context: {cluster: c, user: u}\n"
            "users:\n- name: u\n  user:\n    client-certificate-data: Y2VydA==\n"
            "    client-key-data: a2V5\n");
  StatusOr<KubernetesCredentials> c = KubeconfigCredentials(path);
  ASSERT_OK(c);
  EXPECT_EQ(c->ca_pem, "-----BEGIN");
  EXPECT_EQ(c->client_cert_pem, "cert");
  EXPECT_EQ(c->client_key_pem, "key");
  StatusOr<KubernetesCredentials> missing = KubeconfigCredentials(path, "prod");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "kubeconfig '" + path + "': no context named 'prod'");
  WriteFile(path,
            "current-context: ml\nclusters:\n- name: c\n  cluster: {server: 'k:6443'}\n"
            "contexts:\n- name: ml\n  context: {cluster: c, user: u}\nusers: []\n");
  StatusOr<KubernetesCredentials> bad = KubeconfigCredentials(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("clusters[c].cluster.server must be an http(s) URL"),
            std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(KubeconfigCredentials(dir.path().string() + "/absent").ok());
}

TEST(KubernetesClientTest, UrlEncoding) {
  EXPECT_EQ(UrlEncode("metadata.name=dtrain-7-1"), "metadata.name%3Ddtrain-7-1");
  EXPECT_EQ(UrlEncode("a/b c,d~_"), "a%2Fb%20c%2Cd~_");
}

}  // namespace
}  // namespace dtrain::coordinator
