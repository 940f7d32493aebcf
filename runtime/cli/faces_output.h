// What `dtrain faces` prints: tables for people and the JSON forms behind --json. Pure functions
// of the store's replies (and the image file names the CLI sent), so they are tested byte for
// byte.
#ifndef DTRAIN_RUNTIME_CLI_FACES_OUTPUT_H_
#define DTRAIN_RUNTIME_CLI_FACES_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dtrain/v1/embedding_store.pb.h"

namespace dtrain::cli {

// Distances are printed with 4 decimals ("0.4312").
std::string FormatDistance(double distance);

// IMAGE FACES FACE_ID OUTCOME, then "enrolled 2 faces for alice (1 image without a face)".
// `files[i]` names EnrollResponse.images(i).
std::string RenderEnroll(const v1::EnrollResponse& response, const std::vector<std::string>& files);
nlohmann::ordered_json EnrollToJson(const v1::EnrollResponse& response,
                                    const std::vector<std::string>& files);

// "same person: alice (distance 0.3123 <= threshold 0.6000, nearest face 12)" or
// "not alice: distance 0.8123 > threshold 0.6000 (nearest face 12)".
std::string RenderVerify(const v1::VerifyResponse& response);
nlohmann::ordered_json VerifyToJson(const v1::VerifyResponse& response);

// "alice (distance 0.3123, 3 of the nearest faces)" or "unknown: no enrolled face within
// 0.6000", then the candidates: PERSON DISTANCE VOTES FACE_ID MATCH.
std::string RenderIdentify(const v1::IdentifyResponse& response);
nlohmann::ordered_json IdentifyToJson(const v1::IdentifyResponse& response);

// "deleted person alice (3 faces); erased from the data files (compacted)" / "...; scheduled
// for erasure from the data files by 2024-05-01 14:34:56".
std::string RenderDelete(const v1::DeleteResponse& response, bool by_face, int64_t face_id);
nlohmann::ordered_json DeleteToJson(const v1::DeleteResponse& response);

// PERSON FACES [FACE_IDS], then "3 persons, 7 faces".
std::string RenderPersons(const std::vector<v1::PersonSummary>& persons, bool with_face_ids);
nlohmann::ordered_json PersonsToJson(const std::vector<v1::PersonSummary>& persons);

// The clusters (CLUSTER SIZE MAJORITY NEAREST DISTANCE), the curve behind a chosen k (K INERTIA
// BIC), and with `assignments` every face's cluster.
std::string RenderFaceClusters(const v1::ClusterResponse& response, bool assignments);
nlohmann::ordered_json FaceClustersToJson(const v1::ClusterResponse& response);

std::string RenderStoreStats(const v1::StatsResponse& stats);
nlohmann::ordered_json StoreStatsToJson(const v1::StatsResponse& stats);

}  // namespace dtrain::cli

#endif  // DTRAIN_RUNTIME_CLI_FACES_OUTPUT_H_
