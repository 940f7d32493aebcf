// A stand-in for the Kubernetes API server in tests: it serves an exchange file
// (tests/k8s/exchanges/*.json), a list of {request, response} pairs, in order, on 127.0.0.1 at a
// free port. Each request that arrives is checked against the next expected one: method, path,
// query parameters (as a set), the body (as JSON, when one is expected) and the headers the
// exchange names. A mismatch is recorded and answered 599, so a test sees both the mismatch and
// its effect.
//
// Response forms: {"status": 201, "body": <JSON>}, {"status": 200, "text": "log lines\n"} and,
// for a watch, {"status": 200, "events": [{"type": "ADDED", "object": {...}}, ...]} sent as a
// chunked stream of one JSON line per event.
#ifndef DTRAIN_TESTS_K8S_SCRIPTED_API_SERVER_H_
#define DTRAIN_TESTS_K8S_SCRIPTED_API_SERVER_H_

#include <httplib.h>

#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace dtrain::testing {

class ScriptedApiServer {
 public:
  // `substitutions` replace "@NAME@" in the file's text first (paths that differ per run).
  explicit ScriptedApiServer(const std::string& exchange_file,
                             const std::map<std::string, std::string>& substitutions = {}) {
    std::ifstream in(exchange_file);
    if (!in) {
      mismatches_.push_back("cannot read exchange file " + exchange_file);
      return;
    }
    std::stringstream text;
    text << in.rdbuf();
    std::string script = text.str();
    for (const auto& [name, value] : substitutions) {
      const std::string key = "@" + name + "@";
      for (size_t at = script.find(key); at != std::string::npos; at = script.find(key, at)) {
        script.replace(at, key.size(), value);
        at += value.size();
      }
    }
    exchanges_ = nlohmann::json::parse(script);
    auto handler = [this](const httplib::Request& req, httplib::Response& res) { Serve(req, res); };
    server_.Get(".*", handler);
    server_.Post(".*", handler);
    server_.Patch(".*", handler);
    server_.Delete(".*", handler);
    server_.Put(".*", handler);
    server_.set_exception_handler(
        [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr e) {
          std::string what = "unknown exception";
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            what = x.what();
          } catch (...) {
          }
          std::lock_guard<std::mutex> lock(mu_);
          mismatches_.push_back("serving " + req.method + " " + req.path + " threw: " + what);
          res.status = 599;
        });
    // Bound and listening on return: clients may connect before the thread accepts.
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~ScriptedApiServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  ScriptedApiServer(const ScriptedApiServer&) = delete;
  ScriptedApiServer& operator=(const ScriptedApiServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Every request that did not match, and exchanges never asked for.
  std::vector<std::string> Problems() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> problems = mismatches_;
    for (size_t i = next_; i < exchanges_.size(); ++i) {
      problems.push_back("exchange " + std::to_string(i) +
                         " never requested: " + exchanges_[i]["request"].dump());
    }
    return problems;
  }

 private:
  void Serve(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string got = req.method + " " + req.path;
    if (next_ >= exchanges_.size()) {
      mismatches_.push_back("unexpected request " + got + " after the last exchange");
      res.status = 599;
      return;
    }
    const size_t index = next_++;
    const nlohmann::json& want = exchanges_[index]["request"];
    std::string problem;
    auto add = [&](const std::string& p) { problem += (problem.empty() ? "" : "; ") + p; };
    if (want["method"] != req.method || want["path"] != req.path) {
      add("expected " + want["method"].get<std::string>() + " " + want["path"].get<std::string>());
    }
    nlohmann::json query = nlohmann::json::object();
    for (const auto& [key, value] : req.params) query[key] = value;
    if (query != want.value("query", nlohmann::json::object())) {
      add("query " + query.dump() + ", expected " +
          want.value("query", nlohmann::json::object()).dump());
    }
    if (want.contains("body")) {
      const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
      if (body != want["body"]) add("body " + req.body + ", expected " + want["body"].dump());
    }
    const nlohmann::json headers = want.value("headers", nlohmann::json::object());
    for (const auto& [name, value] : headers.items()) {
      if (req.get_header_value(name) != value.get<std::string>()) {
        add("header " + name + ": '" + req.get_header_value(name) + "', expected " + value.dump());
      }
    }
    if (!problem.empty()) {
      mismatches_.push_back("exchange " + std::to_string(index) + " (" + got + "): " + problem);
      res.status = 599;
      return;
    }
    const nlohmann::json& response = exchanges_[index]["response"];
    res.status = response.value("status", 200);
    if (response.contains("events")) {
      std::vector<std::string> lines;
      for (const nlohmann::json& e : response["events"]) lines.push_back(e.dump() + "\n");
      res.set_chunked_content_provider("application/json",
                                       [lines](size_t, httplib::DataSink& sink) {
                                         for (const std::string& line : lines)
                                           sink.write(line.data(), line.size());
                                         sink.done();
                                         return true;
                                       });
    } else if (response.contains("text")) {
      res.set_content(response["text"].get<std::string>(), "text/plain");
    } else {
      res.set_content(response.value("body", nlohmann::json::object()).dump(), "application/json");
    }
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  nlohmann::json exchanges_ = nlohmann::json::array();
  size_t next_ = 0;
  std::vector<std::string> mismatches_;
};

}  // namespace dtrain::testing

#endif  // DTRAIN_TESTS_K8S_SCRIPTED_API_SERVER_H_
