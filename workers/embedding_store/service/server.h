// The dtrain-embed-store process: the EmbeddingStore gRPC service (plus health and reflection)
// over a FaceDb in the data directory, an index rebuilt from it, and an encoder.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_SERVER_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_SERVER_H_

#include <optional>
#include <string>

#include "runtime/rpc/auth.h"
#include "workers/embedding_store/index/hnsw_index.h"
#include "workers/embedding_store/service/store_service.h"

namespace dtrain::embed {

inline constexpr char kDefaultStoreListenAddress[] = "127.0.0.1:7071";
inline constexpr char kDefaultDataDirName[] = "embed-store-data";

struct EmbedStoreConfig {
  std::string listen_address = kDefaultStoreListenAddress;  // port 0 picks a free one
  std::string data_dir;                                     // "" = DefaultDataDir()
  rpc::ServerSecurity security;
  std::string encoder = "face-api";  // see encoders.h
  std::string index = "flat";        // "flat" or "hnsw"
  HnswIndex::Options hnsw;
  bool detect_faces = true;  // false: no detector (clients send crops, detect_faces = false)
  StoreOptions store;
  // gRPC's limit on one request; must hold max_images_per_request images of max_image_bytes.
  size_t max_request_bytes = size_t{72} << 20;
  std::string port_file;  // written once listening: the bound "host:port"
  // HTTP endpoint (/metrics, Prometheus text) behind the same token; "" = none.
  std::string http_listen_address;
  std::string http_port_file;  // written once listening: the bound HTTP "host:port"
};

// $XDG_DATA_HOME/dtrain/embed-store when XDG_DATA_HOME is set, else ./embed-store-data.
std::string DefaultDataDir();

// Serves until SIGINT or SIGTERM; returns the process exit code (0 after a clean shutdown,
// 2 for a configuration error, printed before anything listens).
int RunEmbeddingStore(const EmbedStoreConfig& config);

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_SERVICE_SERVER_H_
