#include "runtime/cli/faces_output.h"

#include <cstdio>
#include <filesystem>
#include <map>

#include "runtime/cli/output.h"

namespace dtrain::cli {
namespace {

std::string Plural(int64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

nlohmann::ordered_json BoxToJson(const v1::FaceBox& box) {
  return {{"x", box.x()}, {"y", box.y()}, {"width", box.width()}, {"height", box.height()}};
}

bool HasBox(const v1::FaceBox& box) { return box.width() > 0 && box.height() > 0; }

std::string FileName(const std::vector<std::string>& files, int index) {
  if (index < 0 || static_cast<size_t>(index) >= files.size()) {
    return "images[" + std::to_string(index) + "]";
  }
  return files[index];
}

std::string CompactionText(const v1::DeleteResponse& response) {
  switch (response.compaction()) {
    case v1::COMPACTED:
      return "erased from the data files (compacted)";
    case v1::SCHEDULED: {
      std::string text = "scheduled for erasure from the data files by " +
                         FormatLocalTime(response.compaction_due_ms());
      if (!response.compaction_error().empty()) {
        text += " (compaction failed: " + response.compaction_error() + ")";
      }
      return text;
    }
    default:
      return "compaction unknown";
  }
}

const char* CompactionName(v1::Compaction c) {
  switch (c) {
    case v1::COMPACTED:
      return "compacted";
    case v1::SCHEDULED:
      return "scheduled";
    default:
      return "unknown";
  }
}

std::string Bytes(int64_t bytes) {
  char text[32];
  if (bytes >= (int64_t{1} << 30)) {
    std::snprintf(text, sizeof(text), "%.1f GiB", bytes / double(int64_t{1} << 30));
  } else if (bytes >= (1 << 20)) {
    std::snprintf(text, sizeof(text), "%.1f MiB", bytes / double(1 << 20));
  } else if (bytes >= (1 << 10)) {
    std::snprintf(text, sizeof(text), "%.1f KiB", bytes / 1024.0);
  } else {
    std::snprintf(text, sizeof(text), "%lld B", static_cast<long long>(bytes));
  }
  return text;
}

}  // namespace

std::string FormatDistance(double distance) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4f", distance);
  return text;
}

// ---------------------------------------------------------------- enroll

std::string RenderEnroll(const v1::EnrollResponse& response,
                         const std::vector<std::string>& files) {
  std::string out;
  int without_face = 0;
  if (response.images_size() > 0) {
    Table table({"IMAGE", "FACES", "FACE_ID", "OUTCOME"});
    table.SetAlign(1, Table::Align::kRight);
    table.SetAlign(2, Table::Align::kRight);
    for (const v1::ImageOutcome& image : response.images()) {
      if (!image.enrolled()) ++without_face;
      table.AddRow({FileName(files, image.index()), std::to_string(image.faces_found()),
                    image.enrolled() ? std::to_string(image.face_id()) : "-",
                    image.enrolled() ? "enrolled" : image.error()});
    }
    out += table.Render();
  }
  out += "enrolled " + Plural(response.face_ids_size(), "face", "faces") + " for " +
         response.person_id();
  if (without_face > 0) out += " (" + Plural(without_face, "image", "images") + " without a face)";
  if (response.replayed()) out += " (already enrolled by an earlier attempt of this request)";
  return out + "\n";
}

nlohmann::ordered_json EnrollToJson(const v1::EnrollResponse& response,
                                    const std::vector<std::string>& files) {
  nlohmann::ordered_json images = nlohmann::ordered_json::array();
  for (const v1::ImageOutcome& image : response.images()) {
    nlohmann::ordered_json item = {{"file", FileName(files, image.index())},
                                   {"enrolled", image.enrolled()},
                                   {"faces_found", image.faces_found()}};
    if (image.enrolled()) {
      item["face_id"] = image.face_id();
      if (HasBox(image.box())) item["box"] = BoxToJson(image.box());
    } else {
      item["error"] = image.error();
    }
    images.push_back(std::move(item));
  }
  return {
      {"person_id", response.person_id()},
      {"face_ids", std::vector<int64_t>(response.face_ids().begin(), response.face_ids().end())},
      {"images", std::move(images)},
      {"replayed", response.replayed()}};
}

// ---------------------------------------------------------------- verify and identify

std::string RenderVerify(const v1::VerifyResponse& response) {
  if (response.same_person()) {
    return "same person: " + response.person_id() + " (distance " +
           FormatDistance(response.distance()) + " <= threshold " +
           FormatDistance(response.threshold()) + ", nearest face " +
           std::to_string(response.nearest_face_id()) + ")\n";
  }
  return "not " + response.person_id() + ": distance " + FormatDistance(response.distance()) +
         " > threshold " + FormatDistance(response.threshold()) + " (nearest face " +
         std::to_string(response.nearest_face_id()) + ")\n";
}

nlohmann::ordered_json VerifyToJson(const v1::VerifyResponse& response) {
  nlohmann::ordered_json out = {{"person_id", response.person_id()},
                                {"same_person", response.same_person()},
                                {"distance", response.distance()},
                                {"threshold", response.threshold()},
                                {"nearest_face_id", response.nearest_face_id()}};
  if (HasBox(response.box())) out["box"] = BoxToJson(response.box());
  return out;
}

std::string RenderIdentify(const v1::IdentifyResponse& response) {
  std::string out;
  if (response.unknown()) {
    out = "unknown: no enrolled face within " + FormatDistance(response.threshold());
    if (response.candidates_size() > 0) {
      const v1::PersonMatch& nearest = response.candidates(0);
      out +=
          " (nearest: " + nearest.person_id() + " at " + FormatDistance(nearest.distance()) + ")";
    }
    out += "\n";
  } else {
    const v1::PersonMatch& best = response.candidates(0);
    out = response.person_id() + " (distance " + FormatDistance(best.distance()) + ", " +
          Plural(best.votes(), "vote", "votes") + " within " +
          FormatDistance(response.threshold()) + ")\n";
  }
  if (response.candidates_size() > 0) {
    Table table({"PERSON", "DISTANCE", "VOTES", "FACE_ID", "MATCH"});
    for (size_t c = 1; c <= 3; ++c) table.SetAlign(c, Table::Align::kRight);
    for (const v1::PersonMatch& m : response.candidates()) {
      table.AddRow({m.person_id(), FormatDistance(m.distance()), std::to_string(m.votes()),
                    std::to_string(m.face_id()), m.within_threshold() ? "yes" : "no"});
    }
    out += table.Render();
  }
  return out;
}

nlohmann::ordered_json IdentifyToJson(const v1::IdentifyResponse& response) {
  nlohmann::ordered_json candidates = nlohmann::ordered_json::array();
  for (const v1::PersonMatch& m : response.candidates()) {
    candidates.push_back({{"person_id", m.person_id()},
                          {"distance", m.distance()},
                          {"votes", m.votes()},
                          {"face_id", m.face_id()},
                          {"within_threshold", m.within_threshold()}});
  }
  nlohmann::ordered_json out = {
      {"person_id", response.unknown() ? nlohmann::ordered_json(nullptr)
                                       : nlohmann::ordered_json(response.person_id())},
      {"unknown", response.unknown()},
      {"threshold", response.threshold()},
      {"candidates", std::move(candidates)}};
  if (HasBox(response.box())) out["box"] = BoxToJson(response.box());
  return out;
}

// ---------------------------------------------------------------- delete and list

std::string RenderDelete(const v1::DeleteResponse& response, bool by_face, int64_t face_id) {
  std::string out;
  if (by_face) {
    out = "deleted face " + std::to_string(face_id) + " of " + response.person_id();
    if (response.person_removed()) out += " (their last: the person is gone)";
  } else {
    out = "deleted person " + response.person_id() + " (" +
          Plural(response.faces_removed(), "face", "faces") + ")";
  }
  return out + "; " + CompactionText(response) + "\n";
}

nlohmann::ordered_json DeleteToJson(const v1::DeleteResponse& response) {
  nlohmann::ordered_json out = {{"person_id", response.person_id()},
                                {"faces_removed", response.faces_removed()},
                                {"person_removed", response.person_removed()},
                                {"compaction", CompactionName(response.compaction())}};
  if (response.compaction() == v1::SCHEDULED) {
    out["compaction_due_ms"] = response.compaction_due_ms();
    out["compaction_due"] = FormatUtcTime(response.compaction_due_ms());
  }
  if (!response.compaction_error().empty()) out["compaction_error"] = response.compaction_error();
  return out;
}

std::string RenderPersons(const std::vector<v1::PersonSummary>& persons, bool with_face_ids) {
  std::vector<std::string> headers = {"PERSON", "FACES"};
  if (with_face_ids) headers.push_back("FACE_IDS");
  Table table(headers);
  table.SetAlign(1, Table::Align::kRight);
  int64_t faces = 0;
  for (const v1::PersonSummary& p : persons) {
    faces += p.face_count();
    std::vector<std::string> row = {p.person_id(), std::to_string(p.face_count())};
    if (with_face_ids) {
      std::string ids;
      for (int64_t id : p.face_ids()) ids += (ids.empty() ? "" : ",") + std::to_string(id);
      row.push_back(ids);
    }
    table.AddRow(std::move(row));
  }
  return table.Render() + Plural(static_cast<int64_t>(persons.size()), "person", "persons") + ", " +
         Plural(faces, "face", "faces") + "\n";
}

nlohmann::ordered_json PersonsToJson(const std::vector<v1::PersonSummary>& persons) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const v1::PersonSummary& p : persons) {
    out.push_back({{"person_id", p.person_id()},
                   {"face_count", p.face_count()},
                   {"face_ids", std::vector<int64_t>(p.face_ids().begin(), p.face_ids().end())}});
  }
  return out;
}

// ---------------------------------------------------------------- cluster and stats

std::string RenderFaceClusters(const v1::ClusterResponse& response, bool assignments) {
  std::string out = Plural(response.k(), "cluster", "clusters") + " of " +
                    // total_assignments: the summary view carries no assignments (0: a store
                    // from before paging, which sent them all).
                    Plural(response.total_assignments() > 0 ? response.total_assignments()
                                                            : response.assignments_size(),
                           "face", "faces") +
                    " (k " +
                    (response.method() == "given" ? "given" : "chosen by " + response.method()) +
                    ", inertia " + FormatDistance(response.inertia()) + ")\n";
  Table clusters({"CLUSTER", "SIZE", "MAJORITY", "NEAREST_TO_CENTROID", "DISTANCE"});
  clusters.SetAlign(0, Table::Align::kRight);
  clusters.SetAlign(1, Table::Align::kRight);
  clusters.SetAlign(4, Table::Align::kRight);
  for (const v1::ClusterSummary& c : response.clusters()) {
    clusters.AddRow({std::to_string(c.cluster()), std::to_string(c.size()),
                     c.majority_person_id() + " (" + std::to_string(c.majority_count()) + ")",
                     c.nearest_person_id() + " (face " + std::to_string(c.nearest_face_id()) + ")",
                     FormatDistance(c.nearest_distance())});
  }
  out += clusters.Render();
  if (response.curve_size() > 0) {
    out += "\n";
    const bool elbow = response.method() == "elbow";
    std::vector<std::string> headers = {"K", "INERTIA", "BIC"};
    if (elbow) headers.push_back("ELBOW_DISTANCE");
    headers.push_back("");
    Table curve(headers);
    for (size_t c = 0; c + 1 < headers.size(); ++c) curve.SetAlign(c, Table::Align::kRight);
    for (const v1::CurvePoint& p : response.curve()) {
      char inertia[32], bic[32], elbow_distance[32];
      std::snprintf(inertia, sizeof(inertia), "%.4f", p.inertia());
      std::snprintf(bic, sizeof(bic), "%.1f", p.bic());
      std::snprintf(elbow_distance, sizeof(elbow_distance), "%.4f", p.elbow_distance());
      std::vector<std::string> row = {std::to_string(p.k()), inertia, bic};
      if (elbow) row.push_back(elbow_distance);
      row.push_back(p.k() == response.k() ? "<- chosen" : "");
      curve.AddRow(std::move(row));
    }
    out += curve.Render();
  }
  if (assignments) {
    out += "\n";
    Table table({"FACE_ID", "PERSON", "CLUSTER", "DISTANCE"});
    table.SetAlign(0, Table::Align::kRight);
    table.SetAlign(2, Table::Align::kRight);
    table.SetAlign(3, Table::Align::kRight);
    for (const v1::ClusterAssignment& a : response.assignments()) {
      table.AddRow({std::to_string(a.face_id()), a.person_id(), std::to_string(a.cluster()),
                    FormatDistance(a.distance())});
    }
    out += table.Render();
  }
  return out;
}

nlohmann::ordered_json FaceClustersToJson(const v1::ClusterResponse& response) {
  nlohmann::ordered_json clusters = nlohmann::ordered_json::array();
  for (const v1::ClusterSummary& c : response.clusters()) {
    clusters.push_back(
        {{"cluster", c.cluster()},
         {"size", c.size()},
         {"majority_person_id", c.majority_person_id()},
         {"majority_count", c.majority_count()},
         {"nearest_face_id", c.nearest_face_id()},
         {"nearest_person_id", c.nearest_person_id()},
         {"nearest_distance", c.nearest_distance()},
         {"centroid", std::vector<float>(c.centroid().begin(), c.centroid().end())}});
  }
  nlohmann::ordered_json assignments = nlohmann::ordered_json::array();
  for (const v1::ClusterAssignment& a : response.assignments()) {
    assignments.push_back({{"face_id", a.face_id()},
                           {"person_id", a.person_id()},
                           {"cluster", a.cluster()},
                           {"distance", a.distance()}});
  }
  nlohmann::ordered_json curve = nlohmann::ordered_json::array();
  for (const v1::CurvePoint& p : response.curve()) {
    nlohmann::ordered_json point = {{"k", p.k()}, {"inertia", p.inertia()}, {"bic", p.bic()}};
    if (response.method() == "elbow") point["elbow_distance"] = p.elbow_distance();
    curve.push_back(std::move(point));
  }
  return {{"k", response.k()},
          {"method", response.method()},
          {"inertia", response.inertia()},
          {"clusters", std::move(clusters)},
          {"assignments", std::move(assignments)},
          {"curve", std::move(curve)}};
}

std::string RenderStoreStats(const v1::StatsResponse& s) {
  std::string out;
  auto line = [&](const std::string& key, const std::string& value) {
    out += key + std::string(key.size() < 18 ? 18 - key.size() : 1, ' ') + value + "\n";
  };
  line("persons", std::to_string(s.persons()));
  line("faces", std::to_string(s.faces()));
  line("encoder", s.encoder() + " (" + std::to_string(s.dim()) + "-d)");
  line("threshold",
       FormatDistance(s.threshold()) + " " + s.metric() + " (" + s.threshold_source() + ")");
  line("face detection", s.detector() ? "yes" : "no (send face crops)");
  line("index", s.index_kind() + ", " + Bytes(s.index_memory_bytes()));
  line("wal", Bytes(s.wal_bytes()));
  line("snapshot", s.snapshot_bytes() > 0 ? Bytes(s.snapshot_bytes()) + ", written " +
                                                FormatLocalTime(s.last_snapshot_ms())
                                          : "none");
  line("checkpoints", std::to_string(s.checkpoints()) + " since start");
  if (s.pending_compaction_due_ms() > 0) {
    line("compaction", "scheduled by " + FormatLocalTime(s.pending_compaction_due_ms()));
  }
  const v1::StoreLimits& l = s.limits();
  line("limits", std::to_string(l.max_images_per_request()) + " images of " +
                     Bytes(l.max_image_bytes()) + " and " + std::to_string(l.max_image_pixels()) +
                     " pixels per request, " + std::to_string(l.max_vectors_per_request()) +
                     " vectors, " + std::to_string(l.max_cluster_faces()) +
                     " faces per clustering; " + std::to_string(l.max_concurrent_requests()) +
                     " requests and " + std::to_string(l.max_concurrent_decodes()) +
                     " image decodes at once");
  for (const std::string& w : s.recovery_warnings()) line("recovery warning", w);
  return out;
}

nlohmann::ordered_json StoreStatsToJson(const v1::StatsResponse& s) {
  const v1::StoreLimits& l = s.limits();
  return {{"persons", s.persons()},
          {"faces", s.faces()},
          {"encoder", s.encoder()},
          {"dim", s.dim()},
          {"metric", s.metric()},
          {"threshold", s.threshold()},
          {"threshold_source", s.threshold_source()},
          {"detector", s.detector()},
          {"index_kind", s.index_kind()},
          {"index_memory_bytes", s.index_memory_bytes()},
          {"wal_bytes", s.wal_bytes()},
          {"snapshot_bytes", s.snapshot_bytes()},
          {"last_snapshot_ms", s.last_snapshot_ms()},
          {"checkpoints", s.checkpoints()},
          {"pending_compaction_due_ms", s.pending_compaction_due_ms()},
          {"limits",
           {{"max_images_per_request", l.max_images_per_request()},
            {"max_image_bytes", l.max_image_bytes()},
            {"max_image_pixels", l.max_image_pixels()},
            {"max_vectors_per_request", l.max_vectors_per_request()},
            {"max_cluster_faces", l.max_cluster_faces()},
            {"max_concurrent_requests", l.max_concurrent_requests()},
            {"max_concurrent_decodes", l.max_concurrent_decodes()}}},
          {"recovery_warnings",
           std::vector<std::string>(s.recovery_warnings().begin(), s.recovery_warnings().end())}};
}

}  // namespace dtrain::cli
