#include "runtime/coordinator/http/rpc_latency.h"

#include <chrono>
#include <string>

namespace dtrain::http {
namespace {

class RpcLatencyInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcLatencyInterceptor(LatencyHistogram* histogram, std::string method)
      : histogram_(histogram),
        method_(std::move(method)),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      histogram_->Observe(
          method_,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    methods->Proceed();
  }

 private:
  LatencyHistogram* const histogram_;
  const std::string method_;
  const std::chrono::steady_clock::time_point start_;
};

class RpcLatencyFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcLatencyFactory(LatencyHistogram* histogram) : histogram_(histogram) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // gRPC owns and deletes the interceptor when the call ends.
    return new RpcLatencyInterceptor(histogram_, info->method());
  }

 private:
  LatencyHistogram* const histogram_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeRpcLatencyInterceptor(
    LatencyHistogram* histogram) {
  return std::make_unique<RpcLatencyFactory>(histogram);
}

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
RpcLatencyInterceptors(LatencyHistogram* histogram) {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(MakeRpcLatencyInterceptor(histogram));
  return creators;
}

}  // namespace dtrain::http
