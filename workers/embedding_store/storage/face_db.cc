#include "workers/embedding_store/storage/face_db.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "runtime/common/atomic_file.h"
#include "workers/embedding_store/storage/snapshot.h"

namespace dtrain::embed {
namespace {

namespace fs = std::filesystem;

constexpr char kWalPrefix[] = "wal-";
constexpr char kWalSuffix[] = ".log";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The generation of a file named wal-<digits>.log, or 0 for any other name.
uint64_t WalGeneration(const std::string& name) {
  const size_t prefix = sizeof(kWalPrefix) - 1;
  const size_t suffix = sizeof(kWalSuffix) - 1;
  if (name.size() <= prefix + suffix || name.compare(0, prefix, kWalPrefix) != 0 ||
      name.compare(name.size() - suffix, suffix, kWalSuffix) != 0) {
    return 0;
  }
  uint64_t gen = 0;
  for (size_t i = prefix; i < name.size() - suffix; ++i) {
    if (name[i] < '0' || name[i] > '9') return 0;
    gen = gen * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return gen;
}

// Control characters are refused so that ids print safely and so that a string field can never
// contain a counterfeit WAL record header (see wal.h).
Status ValidateText(const std::string& value, const char* field, size_t max_bytes,
                    bool allow_empty) {
  if (value.empty() && !allow_empty) return InvalidArgument(std::string(field) + " is empty");
  if (value.size() > max_bytes) {
    return InvalidArgument(std::string(field) + " is " + std::to_string(value.size()) +
                           " bytes; the limit is " + std::to_string(max_bytes));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", c);
      return InvalidArgument(std::string(field) + " contains control character " + hex +
                             " at byte " + std::to_string(i));
    }
  }
  return Status::Ok();
}

Status ValidatePersonId(const std::string& person_id) {
  return ValidateText(person_id, "person_id", kMaxPersonIdBytes, /*allow_empty=*/false);
}

Status ValidateVectors(const std::vector<std::vector<float>>& vectors, int dim) {
  if (vectors.empty()) return InvalidArgument("vectors is empty: enroll at least one face");
  if (vectors.size() > kMaxFacesPerEnroll) {
    return InvalidArgument("vectors holds " + std::to_string(vectors.size()) +
                           " faces; one Enroll takes at most " +
                           std::to_string(kMaxFacesPerEnroll));
  }
  for (size_t i = 0; i < vectors.size(); ++i) {
    const std::vector<float>& v = vectors[i];
    if (v.size() != static_cast<size_t>(dim)) {
      return InvalidArgument("vectors[" + std::to_string(i) + "] has " + std::to_string(v.size()) +
                             " floats; the database's dim is " + std::to_string(dim));
    }
    for (size_t j = 0; j < v.size(); ++j) {
      if (!std::isfinite(v[j])) {
        return InvalidArgument("vectors[" + std::to_string(i) + "][" + std::to_string(j) +
                               "] is not finite (" + std::to_string(v[j]) + ")");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

FaceDb::FaceDb(std::string dir, const FaceDbOptions& options, DirectoryLock lock)
    : dir_(std::move(dir)), options_(options), lock_(std::move(lock)) {}

FaceDb::~FaceDb() = default;

StatusOr<std::unique_ptr<FaceDb>> FaceDb::Open(const std::string& dir, int dim) {
  FaceDbOptions options;
  options.dim = dim;
  return Open(dir, options);
}

StatusOr<std::unique_ptr<FaceDb>> FaceDb::Open(const std::string& dir,
                                               const FaceDbOptions& options) {
  if (options.dim < 1 || options.dim > kMaxFaceDim) {
    return InvalidArgument("dim must be in [1, " + std::to_string(kMaxFaceDim) + "], got " +
                           std::to_string(options.dim));
  }
  if (dir.empty()) return InvalidArgument("dir is empty");
  std::error_code ec;
  const bool created = fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create face database directory " + dir + ": " + ec.message());
  if (created) {
    // Make the new directory's own entry durable, or a crash could lose the whole database.
    const std::string parent = fs::absolute(dir, ec).parent_path().string();
    if (!parent.empty()) DTRAIN_RETURN_IF_ERROR(SyncDirectory(parent));
  }
  DTRAIN_ASSIGN_OR_RETURN(DirectoryLock lock, DirectoryLock::Acquire(dir, "face database"));
  std::unique_ptr<FaceDb> db(new FaceDb(dir, options, std::move(lock)));
  DTRAIN_RETURN_IF_ERROR(db->Recover().WithContext("opening face database " + dir));
  return db;
}

std::string FaceDb::WalPath(uint64_t generation) const {
  char name[40];
  std::snprintf(name, sizeof(name), "%s%010llu%s", kWalPrefix,
                static_cast<unsigned long long>(generation), kWalSuffix);
  return (fs::path(dir_) / name).string();
}

Status FaceDb::Recover() {
  // A temporary snapshot is a checkpoint that never reached its rename: garbage.
  ::unlink((fs::path(dir_) / kSnapshotTempFileName).c_str());

  const std::string snapshot_path = (fs::path(dir_) / kSnapshotFileName).string();
  SnapshotInfo info;
  std::error_code ec;
  const bool have_snapshot = fs::exists(snapshot_path, ec);
  if (have_snapshot) {
    int64_t previous_id = 0;
    DTRAIN_ASSIGN_OR_RETURN(info,
                            ReadSnapshot(
                                snapshot_path, static_cast<uint32_t>(options_.dim),
                                [&](Face&& face) -> Status {
                                  if (face.face_id <= previous_id || face.person_id.empty()) {
                                    return DataLoss("snapshot " + snapshot_path +
                                                    " is damaged: face ids out of order or empty "
                                                    "person id at face " +
                                                    std::to_string(face.face_id));
                                  }
                                  previous_id = face.face_id;
                                  persons_[face.person_id].insert(face.face_id);
                                  const int64_t id = face.face_id;
                                  faces_.emplace(id, std::move(face));
                                  return Status::Ok();
                                },
                                [&](RememberedEnroll&& request) -> Status {
                                  RememberLocked(std::move(request));
                                  return Status::Ok();
                                }));
    DTRAIN_ASSIGN_OR_RETURN(uint64_t bytes, FileSize(snapshot_path));
    snapshot_bytes_ = bytes;
    last_snapshot_ms_ = info.created_ms;
  }
  next_face_id_ = std::max<int64_t>(info.next_face_id, 1);
  applied_seq_ = info.last_seq;
  wal_generation_ = std::max<uint64_t>(info.wal_generation, 1);

  std::vector<uint64_t> generations;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const uint64_t gen = WalGeneration(entry.path().filename().string());
    if (gen > 0) generations.push_back(gen);
  }
  if (ec) return Internal("cannot list " + dir_ + ": " + ec.message());
  std::sort(generations.begin(), generations.end());

  bool removed_any = false;
  std::vector<uint64_t> live;
  for (uint64_t gen : generations) {
    if (gen < wal_generation_) {
      // Left by a checkpoint interrupted after its snapshot was in place: fully covered.
      if (::unlink(WalPath(gen).c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus("cannot remove", WalPath(gen), errno);
      }
      removed_any = true;
    } else {
      live.push_back(gen);
    }
  }
  if (removed_any) DTRAIN_RETURN_IF_ERROR(SyncDirectory(dir_));
  if (!have_snapshot && !live.empty() && live.front() > 1) {
    return DataLoss("face database " + dir_ + " has WAL files from generation " +
                    std::to_string(live.front()) + " on but no " + kSnapshotFileName +
                    ": the snapshot they continue is missing");
  }

  const uint64_t snapshot_seq = info.last_seq;
  for (uint64_t gen : live) {
    const std::string path = WalPath(gen);
    const std::string name = fs::path(path).filename().string();
    auto apply = [&](WalRecord&& record) -> Status {
      if (record.seq <= applied_seq_) {
        if (record.seq > snapshot_seq) {
          warnings_.push_back(name + ": record " + std::to_string(record.seq) +
                              " out of sequence order, ignored");
        }
        return Status::Ok();
      }
      if (record.seq > applied_seq_ + 1) {
        warnings_.push_back(name + ": records " + std::to_string(applied_seq_ + 1) + ".." +
                            std::to_string(record.seq - 1) + " are missing");
      }
      if (auto* enroll = std::get_if<EnrollFaceRecord>(&record.entry)) {
        const Face& face = enroll->face;
        if (face.vector.size() != static_cast<size_t>(options_.dim)) {
          return FailedPrecondition(
              path + " holds vectors of dim " + std::to_string(face.vector.size()) +
              ", but the database was opened with dim " + std::to_string(options_.dim));
        }
        if (faces_.count(face.face_id) > 0) {
          warnings_.push_back(name + ": record " + std::to_string(record.seq) + " enrolls face " +
                              std::to_string(face.face_id) + " which already exists, ignored");
          applied_seq_ = record.seq;
          return Status::Ok();
        }
        next_face_id_ = std::max(next_face_id_, face.face_id + 1);
      }
      if (auto* request = std::get_if<EnrollRequestRecord>(&record.entry)) {
        for (const Face& face : request->faces) {
          if (face.vector.size() != static_cast<size_t>(options_.dim)) {
            return FailedPrecondition(
                path + " holds vectors of dim " + std::to_string(face.vector.size()) +
                ", but the database was opened with dim " + std::to_string(options_.dim));
          }
          if (faces_.count(face.face_id) > 0) {
            warnings_.push_back(name + ": record " + std::to_string(record.seq) + " enrolls face " +
                                std::to_string(face.face_id) + " which already exists, ignored");
            applied_seq_ = record.seq;
            return Status::Ok();
          }
        }
        next_face_id_ = std::max(next_face_id_, request->faces.back().face_id + 1);
      }
      ApplyLocked(std::move(record.entry));
      applied_seq_ = record.seq;
      return Status::Ok();
    };
    DTRAIN_ASSIGN_OR_RETURN(WalReplayReport report, ReplayWal(path, WalReplayOptions{}, apply));
    for (std::string& w : report.warnings) warnings_.push_back(std::move(w));
    if (gen != live.back()) {
      old_wal_generations_.push_back(gen);
      retired_wal_bytes_ += report.end_offset;
    }
  }
  if (!live.empty()) wal_generation_ = live.back();
  DTRAIN_ASSIGN_OR_RETURN(wal_, WalWriter::Open(WalPath(wal_generation_), applied_seq_ + 1));
  return Status::Ok();
}

void FaceDb::RememberLocked(RememberedEnroll request) {
  if (options_.remembered_requests == 0 || requests_.count(request.request_id) > 0) return;
  request_order_.push_back(request.request_id);
  std::string id = request.request_id;
  requests_.emplace(std::move(id), std::move(request));
  while (request_order_.size() > options_.remembered_requests) {
    requests_.erase(request_order_.front());
    request_order_.pop_front();
  }
}

void FaceDb::ForgetRequestsOfLocked(const std::string& person_id) {
  auto gone = [&](const std::string& request_id) {
    auto it = requests_.find(request_id);
    if (it == requests_.end() || it->second.person_id != person_id) return false;
    requests_.erase(it);
    return true;
  };
  request_order_.erase(std::remove_if(request_order_.begin(), request_order_.end(), gone),
                       request_order_.end());
}

size_t FaceDb::ApplyLocked(WalEntry&& entry) {
  if (auto* enroll = std::get_if<EnrollFaceRecord>(&entry)) {
    const int64_t id = enroll->face.face_id;
    persons_[enroll->face.person_id].insert(id);
    faces_[id] = std::move(enroll->face);
    return 0;
  }
  if (auto* request = std::get_if<EnrollRequestRecord>(&entry)) {
    RememberedEnroll remembered;
    remembered.request_id = std::move(request->request_id);
    for (Face& face : request->faces) {
      const int64_t id = face.face_id;
      remembered.face_ids.push_back(id);
      remembered.person_id = face.person_id;
      persons_[face.person_id].insert(id);
      faces_[id] = std::move(face);
    }
    RememberLocked(std::move(remembered));
    return 0;
  }
  if (const auto* del = std::get_if<DeleteFaceRecord>(&entry)) {
    auto it = faces_.find(del->face_id);
    if (it == faces_.end()) return 0;
    auto person = persons_.find(it->second.person_id);
    if (person != persons_.end()) {
      person->second.erase(del->face_id);
      if (person->second.empty()) {
        ForgetRequestsOfLocked(person->first);
        persons_.erase(person);
      }
    }
    faces_.erase(it);
    return 1;
  }
  const auto& del = std::get<DeletePersonRecord>(entry);
  auto person = persons_.find(del.person_id);
  if (person == persons_.end()) return 0;
  for (int64_t id : person->second) faces_.erase(id);
  const size_t removed = person->second.size();
  ForgetRequestsOfLocked(person->first);
  persons_.erase(person);
  return removed;
}

bool FaceDb::HeadHasFace(int64_t face_id) const {
  if (pending_deleted_.count(face_id) > 0) return false;
  if (pending_enrolled_.count(face_id) > 0) return true;
  std::shared_lock<std::shared_mutex> read(state_mu_);
  return faces_.count(face_id) > 0;
}

std::vector<int64_t> FaceDb::HeadFacesOf(const std::string& person_id) const {
  std::vector<int64_t> ids;
  {
    std::shared_lock<std::shared_mutex> read(state_mu_);
    auto it = persons_.find(person_id);
    if (it != persons_.end()) ids.assign(it->second.begin(), it->second.end());
  }
  for (const auto& [id, person] : pending_enrolled_) {
    if (person == person_id) ids.push_back(id);
  }
  ids.erase(std::remove_if(ids.begin(), ids.end(),
                           [this](int64_t id) { return pending_deleted_.count(id) > 0; }),
            ids.end());
  return ids;
}

void FaceDb::WaitUntilWritable(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [this] { return !checkpointing_; });
}

Status FaceDb::FinishMutation(std::unique_lock<std::mutex>& lock, uint64_t first, uint64_t last,
                              std::vector<WalEntry> entries, const std::vector<int64_t>& enrolled,
                              const std::vector<int64_t>& deleted, size_t* removed) {
  lock.unlock();
  const Status durable = wal_->WaitDurable(last);
  lock.lock();
  // Apply in WAL order, whatever order the waiters woke up in, so that memory means what a
  // replay of the log would. A failed record still takes its turn (applying nothing); the WAL
  // error is sticky, so every later record fails too and nothing builds on the missing one.
  cv_.wait(lock, [&] { return applied_seq_ + 1 == first; });
  if (durable.ok()) {
    std::unique_lock<std::shared_mutex> write(state_mu_);
    for (WalEntry& entry : entries) {
      const size_t n = ApplyLocked(std::move(entry));
      if (removed != nullptr) *removed += n;
    }
  }
  for (int64_t id : enrolled) pending_enrolled_.erase(id);
  for (int64_t id : deleted) pending_deleted_.erase(id);
  applied_seq_ = last;
  cv_.notify_all();
  return durable;
}

StatusOr<std::vector<int64_t>> FaceDb::Enroll(const std::string& person_id,
                                              const std::vector<std::vector<float>>& vectors,
                                              const FaceMetadata& metadata) {
  DTRAIN_ASSIGN_OR_RETURN(EnrollResult result, Enroll(person_id, vectors, metadata, {}));
  return std::move(result.face_ids);
}

std::optional<RememberedEnroll> FaceDb::FindRequest(const std::string& request_id) const {
  std::shared_lock<std::shared_mutex> read(state_mu_);
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return std::nullopt;
  return it->second;
}

StatusOr<EnrollResult> FaceDb::Enroll(const std::string& person_id,
                                      const std::vector<std::vector<float>>& vectors,
                                      const FaceMetadata& metadata, const EnrollOptions& options) {
  DTRAIN_RETURN_IF_ERROR(ValidatePersonId(person_id));
  const std::string& request_id = options.request_id;
  if (!request_id.empty()) {
    DTRAIN_RETURN_IF_ERROR(
        ValidateText(request_id, "request_id", kMaxRequestIdBytes, /*allow_empty=*/false));
  }
  DTRAIN_RETURN_IF_ERROR(ValidateVectors(vectors, options_.dim));
  DTRAIN_RETURN_IF_ERROR(
      ValidateText(metadata.source, "metadata.source", kMaxSourceBytes, /*allow_empty=*/true));
  if (metadata.enrolled_at_ms < 0) {
    return InvalidArgument("metadata.enrolled_at_ms is negative (" +
                           std::to_string(metadata.enrolled_at_ms) + ")");
  }
  FaceMetadata stamped = metadata;
  if (stamped.enrolled_at_ms == 0) stamped.enrolled_at_ms = NowMs();

  std::vector<WalEntry> entries;
  entries.reserve(vectors.size());
  std::vector<int64_t> ids;
  ids.reserve(vectors.size());
  std::unique_lock<std::mutex> lock(mu_);
  // The same request id in flight in another call: wait for its outcome, then replay it (or,
  // when it failed, try again here).
  cv_.wait(lock, [&] {
    return !checkpointing_ && (request_id.empty() || pending_requests_.count(request_id) == 0);
  });
  if (!request_id.empty()) {
    if (std::optional<RememberedEnroll> first = FindRequest(request_id)) {
      if (first->person_id != person_id) {
        return InvalidArgument("request_id \"" + request_id + "\" was already used to enroll \"" +
                               first->person_id + "\", not \"" + person_id +
                               "\"; use a new request id for a new request");
      }
      EnrollResult replay;
      replay.face_ids = std::move(first->face_ids);
      replay.replayed = true;
      return replay;
    }
  }
  if (options.before_commit) DTRAIN_RETURN_IF_ERROR(options.before_commit());
  std::vector<Face> faces;
  faces.reserve(vectors.size());
  for (const std::vector<float>& v : vectors) {
    faces.push_back(Face{next_face_id_ + static_cast<int64_t>(ids.size()), person_id, v, stamped});
    ids.push_back(faces.back().face_id);
  }
  if (request_id.empty()) {
    for (Face& face : faces) entries.push_back(EnrollFaceRecord{std::move(face)});
  } else {
    entries.push_back(EnrollRequestRecord{request_id, std::move(faces)});
  }
  DTRAIN_ASSIGN_OR_RETURN(uint64_t last, wal_->Enqueue(entries));
  next_face_id_ += static_cast<int64_t>(ids.size());
  for (int64_t id : ids) pending_enrolled_.emplace(id, person_id);
  if (!request_id.empty()) pending_requests_.insert(request_id);
  const uint64_t first = last - entries.size() + 1;
  const Status committed = FinishMutation(lock, first, last, std::move(entries), ids, {}, nullptr);
  if (!request_id.empty()) {
    pending_requests_.erase(request_id);
    cv_.notify_all();
  }
  DTRAIN_RETURN_IF_ERROR(committed);
  lock.unlock();
  MaybeAutoCheckpoint();
  EnrollResult result;
  result.face_ids = std::move(ids);
  return result;
}

Status FaceDb::DeleteFace(int64_t face_id) {
  std::unique_lock<std::mutex> lock(mu_);
  WaitUntilWritable(lock);
  if (!HeadHasFace(face_id)) return NotFound("face_id " + std::to_string(face_id) + " not found");
  std::vector<WalEntry> entries{DeleteFaceRecord{face_id}};
  DTRAIN_ASSIGN_OR_RETURN(uint64_t last, wal_->Enqueue(entries));
  pending_deleted_.insert(face_id);
  DTRAIN_RETURN_IF_ERROR(
      FinishMutation(lock, last, last, std::move(entries), {}, {face_id}, nullptr));
  lock.unlock();
  MaybeAutoCheckpoint();
  return Status::Ok();
}

StatusOr<size_t> FaceDb::DeletePerson(const std::string& person_id) {
  DTRAIN_RETURN_IF_ERROR(ValidatePersonId(person_id));
  std::unique_lock<std::mutex> lock(mu_);
  WaitUntilWritable(lock);
  const std::vector<int64_t> ids = HeadFacesOf(person_id);
  if (ids.empty()) return NotFound("person_id \"" + person_id + "\" not found");
  std::vector<WalEntry> entries{DeletePersonRecord{person_id}};
  DTRAIN_ASSIGN_OR_RETURN(uint64_t last, wal_->Enqueue(entries));
  pending_deleted_.insert(ids.begin(), ids.end());
  size_t removed = 0;
  DTRAIN_RETURN_IF_ERROR(FinishMutation(lock, last, last, std::move(entries), {}, ids, &removed));
  lock.unlock();
  MaybeAutoCheckpoint();
  return removed;
}

std::vector<PersonSummary> FaceDb::ListPersons() const {
  std::shared_lock<std::shared_mutex> read(state_mu_);
  std::vector<PersonSummary> out;
  out.reserve(persons_.size());
  for (const auto& [person_id, ids] : persons_) out.push_back({person_id, ids.size()});
  return out;
}

StatusOr<std::vector<Face>> FaceDb::GetFaces(const std::string& person_id) const {
  std::shared_lock<std::shared_mutex> read(state_mu_);
  auto person = persons_.find(person_id);
  if (person == persons_.end()) return NotFound("person_id \"" + person_id + "\" not found");
  std::vector<Face> out;
  out.reserve(person->second.size());
  for (int64_t id : person->second) out.push_back(faces_.at(id));
  return out;
}

StatusOr<Face> FaceDb::GetFace(int64_t face_id) const {
  std::shared_lock<std::shared_mutex> read(state_mu_);
  auto it = faces_.find(face_id);
  if (it == faces_.end()) return NotFound("face_id " + std::to_string(face_id) + " not found");
  return it->second;
}

void FaceDb::ForEach(const FaceVisitor& visit) const {
  std::shared_lock<std::shared_mutex> read(state_mu_);
  for (const auto& [id, face] : faces_) visit(id, face.person_id, face.vector);
}

FaceDbStats FaceDb::Stats() const {
  FaceDbStats stats;
  {
    std::shared_lock<std::shared_mutex> read(state_mu_);
    stats.persons = persons_.size();
    stats.faces = faces_.size();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats.last_seq = applied_seq_;
  }
  stats.wal_bytes = retired_wal_bytes_.load() + wal_->size_bytes();
  stats.snapshot_bytes = snapshot_bytes_.load();
  stats.last_snapshot_ms = last_snapshot_ms_.load();
  stats.wal_syncs = wal_->sync_count();
  stats.wal_records = wal_->record_count();
  stats.checkpoints = checkpoints_.load();
  {
    std::lock_guard<std::mutex> lock(auto_error_mu_);
    stats.last_auto_checkpoint_error = last_auto_checkpoint_error_;
  }
  return stats;
}

Status FaceDb::Checkpoint() {
  std::lock_guard<std::mutex> checkpoint(checkpoint_mu_);
  return CheckpointLocked();
}

void FaceDb::MaybeAutoCheckpoint() {
  const uint64_t threshold = options_.checkpoint_wal_bytes;
  if (threshold == 0 || wal_->size_bytes() < threshold) return;
  std::unique_lock<std::mutex> checkpoint(checkpoint_mu_, std::try_to_lock);
  if (!checkpoint.owns_lock()) return;         // another thread is already at it
  if (wal_->size_bytes() < threshold) return;  // and just finished
  const Status status = CheckpointLocked();
  std::lock_guard<std::mutex> lock(auto_error_mu_);
  last_auto_checkpoint_error_ = status.ok() ? "" : status.ToString();
}

Status FaceDb::CheckpointLocked() {
  uint64_t covered_seq;
  int64_t next_face_id;
  {
    // Hold new mutations back and let those already queued finish, so that the state is
    // exactly the effect of records 1..covered_seq.
    std::unique_lock<std::mutex> lock(mu_);
    WaitUntilWritable(lock);
    checkpointing_ = true;
    cv_.wait(lock, [this] { return applied_seq_ == wal_->last_seq(); });
    covered_seq = applied_seq_;
    next_face_id = next_face_id_;
  }
  const Status status = WriteCheckpoint(covered_seq, next_face_id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    checkpointing_ = false;
  }
  cv_.notify_all();
  return status.WithContext("checkpoint of " + dir_);
}

Status FaceDb::WriteCheckpoint(uint64_t covered_seq, int64_t next_face_id) {
  // New WAL file first: if the snapshot then fails, the old file stays and replay reads both,
  // so there is no moment at which a record lives only in a file a snapshot claims to cover.
  const uint64_t new_generation = wal_generation_ + 1;
  const uint64_t old_bytes = wal_->size_bytes();
  DTRAIN_RETURN_IF_ERROR(wal_->Rotate(WalPath(new_generation)));
  old_wal_generations_.push_back(wal_generation_);
  retired_wal_bytes_ += old_bytes;
  wal_generation_ = new_generation;

  DTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<SnapshotWriter> writer,
                          SnapshotWriter::Create(dir_, static_cast<uint32_t>(options_.dim)));
  {
    std::shared_lock<std::shared_mutex> read(state_mu_);
    for (const auto& [id, face] : faces_) DTRAIN_RETURN_IF_ERROR(writer->Add(face));
    for (const std::string& request_id : request_order_) {
      DTRAIN_RETURN_IF_ERROR(writer->AddRequest(requests_.at(request_id)));
    }
  }
  SnapshotInfo info;
  info.next_face_id = next_face_id;
  info.last_seq = covered_seq;
  info.wal_generation = new_generation;
  info.created_ms = NowMs();
  DTRAIN_ASSIGN_OR_RETURN(uint64_t bytes, writer->Commit(info));
  snapshot_bytes_ = bytes;
  last_snapshot_ms_ = info.created_ms;

  // The snapshot covers every older WAL file now; deleting them is the compaction.
  std::vector<uint64_t> kept;
  Status status;
  for (uint64_t gen : old_wal_generations_) {
    if (::unlink(WalPath(gen).c_str()) != 0 && errno != ENOENT) {
      if (status.ok()) status = ErrnoStatus("cannot remove", WalPath(gen), errno);
      kept.push_back(gen);
    }
  }
  old_wal_generations_ = kept;
  uint64_t kept_bytes = 0;
  for (uint64_t gen : kept) {
    StatusOr<uint64_t> size = FileSize(WalPath(gen));
    if (size.ok()) kept_bytes += *size;
  }
  retired_wal_bytes_ = kept_bytes;
  DTRAIN_RETURN_IF_ERROR(SyncDirectory(dir_));
  checkpoints_.fetch_add(1);
  return status;
}

}  // namespace dtrain::embed
