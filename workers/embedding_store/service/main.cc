// dtrain-embed-store: the embedding-store worker. A face database of encodings with exact or
// HNSW search, durable (WAL + snapshots), served over gRPC. Usually started as
// `dtrain embed-store [flags]`.
//
//   dtrain-embed-store --insecure-local-only              127.0.0.1:7071, face-api, flat index
//   dtrain-embed-store --token-file secret --listen 0.0.0.0:7071 --tls-cert c.pem --tls-key k.pem
//   dtrain-embed-store --encoder job:runs/faces --index hnsw --insecure-local-only
#include <CLI/CLI.hpp>
#include <cstdio>

#include "workers/embedding_store/service/encoders.h"
#include "workers/embedding_store/service/server.h"

#ifndef DTRAIN_VERSION
#define DTRAIN_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  namespace embed = dtrain::embed;
  embed::EmbedStoreConfig config;
  CLI::App app{
      "dtrain-embed-store: a face database of encodings (exact or HNSW search, WAL + snapshots, "
      "k-means) served over gRPC (dtrain.v1.EmbeddingStore)"};
  app.set_version_flag("--version", "dtrain-embed-store " DTRAIN_VERSION);
  app.footer("Defaults: listen " + std::string(embed::kDefaultStoreListenAddress) + ", data dir " +
             embed::DefaultDataDir() + ", encoder face-api from " + embed::DefaultFaceApiDir() +
             " (deploy/fetch-face-model.sh), flat index. A token file is required unless "
             "--insecure-local-only.\nExit codes: 0 clean shutdown (SIGINT/SIGTERM), 2 bad "
             "configuration.");
  app.add_option("--listen", config.listen_address, "host:port to serve on (port 0: a free one)")
      ->capture_default_str();
  app.add_option("--data-dir", config.data_dir,
                 "the face database (snapshot + WAL); default $XDG_DATA_HOME/dtrain/embed-store, "
                 "else ./embed-store-data (here: " +
                     embed::DefaultDataDir() + ")");
  auto* token_file = app.add_option("--token-file", config.security.token_file,
                                    "bearer-token secret every client must present (mode 0600)");
  auto* insecure = app.add_flag("--insecure-local-only", config.security.insecure_local_only,
                                "no token and no TLS; only loopback listen addresses");
  auto* cert = app.add_option("--tls-cert", config.security.tls_cert_file, "PEM certificate");
  auto* key = app.add_option("--tls-key", config.security.tls_key_file, "PEM private key");
  cert->needs(key);
  key->needs(cert);
  insecure->excludes(token_file)->excludes(cert)->excludes(key);
  app.add_option("--encoder", config.encoder,
                 "face-api (default model dir), face-api:MODEL_DIR, or job:RUN_DIR (the output "
                 "directory of a face_triplet job: encoder.json + model.pt)")
      ->capture_default_str();
  app.add_option("--index", config.index, "flat (exact) or hnsw (approximate)")
      ->capture_default_str()
      ->check(CLI::IsMember({"flat", "hnsw"}));
  app.add_option("--hnsw-m", config.hnsw.m, "HNSW links per node")->capture_default_str();
  app.add_option("--hnsw-ef-construction", config.hnsw.ef_construction,
                 "HNSW candidate list while inserting")
      ->capture_default_str();
  app.add_option("--hnsw-ef", config.hnsw.ef_search, "HNSW candidate list while searching")
      ->capture_default_str();
  float threshold = 0;
  auto* threshold_opt = app.add_option(
      "--threshold", threshold,
      "same-person Euclidean distance (default: the encoder's: face-api 0.6, a job's from its "
      "encoder.json)");
  threshold_opt->check(CLI::PositiveNumber);
  bool no_detect = false;
  app.add_flag("--no-detect", no_detect,
               "no face detector: images are embedded whole (clients send face crops)");
  app.add_option("--max-images", config.store.max_images_per_request, "images per request")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-image-bytes", config.store.max_image_bytes, "bytes per image")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1024}, size_t{256} << 20));
  app.add_option("--max-image-pixels", config.store.max_image_pixels,
                 "width x height per image, checked before decoding")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-request-bytes", config.max_request_bytes, "gRPC message size limit")
      ->capture_default_str();
  app.add_option("--max-cluster-faces", config.store.max_cluster_faces,
                 "faces one Cluster call may take")
      ->capture_default_str();
  int64_t compaction_delay_ms = config.store.compaction_delay.count();
  app.add_option("--compaction-delay-ms", compaction_delay_ms,
                 "a deletion is erased from the files (snapshot + new WAL) this long after it, "
                 "unless the client waits for it")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{24} * 3600 * 1000));
  app.add_option("--max-concurrent-requests", config.store.max_concurrent_requests,
                 "requests handled at once (Stats excepted); more are refused with "
                 "RESOURCE_EXHAUSTED, which clients retry with backoff")
      ->capture_default_str()
      ->check(CLI::Range(1, embed::kMaxConcurrentRequestsLimit));
  app.add_option("--max-concurrent-decodes", config.store.max_concurrent_decodes,
                 "images decoded and encoded at once (bounds the memory of a burst); other "
                 "requests wait")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--port-file", config.port_file, "write the bound host:port here once listening");
  app.add_option("--http-listen", config.http_listen_address,
                 "host:port for Prometheus /metrics over HTTP, same token (default: off)");
  app.add_option("--http-port-file", config.http_port_file,
                 "write the bound HTTP host:port here once listening");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (threshold_opt->count() > 0) config.store.threshold = threshold;
  config.detect_faces = !no_detect;
  config.store.compaction_delay = std::chrono::milliseconds(compaction_delay_ms);
  return embed::RunEmbeddingStore(config);
}
