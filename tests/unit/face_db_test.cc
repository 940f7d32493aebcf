// FaceDb: durability, recovery from damaged files, compaction, crash safety, group commit.
#include "workers/embedding_store/storage/face_db.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "workers/embedding_store/storage/coding.h"
#include "workers/embedding_store/storage/crc32c.h"
#include "workers/embedding_store/storage/snapshot.h"

namespace dtrain::embed {
namespace {

namespace fs = std::filesystem;

constexpr int kDim = 16;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<float> Vec(float seed, int dim = kDim) {
  std::vector<float> v(static_cast<size_t>(dim));
  for (int j = 0; j < dim; ++j) v[static_cast<size_t>(j)] = seed + 0.001f * static_cast<float>(j);
  return v;
}

std::unique_ptr<FaceDb> OpenDb(const std::string& dir, FaceDbOptions options = {}) {
  if (options.dim == kDefaultFaceDim) options.dim = kDim;
  StatusOr<std::unique_ptr<FaceDb>> db = FaceDb::Open(dir, options);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

int64_t EnrollOne(FaceDb* db, const std::string& person, float seed) {
  StatusOr<std::vector<int64_t>> ids = db->Enroll(person, {Vec(seed)});
  EXPECT_TRUE(ids.ok()) << ids.status().ToString();
  return ids.ok() ? ids->at(0) : -1;
}

std::string WalFile(const std::string& dir) {
  std::string found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("wal-", 0) == 0) {
      EXPECT_TRUE(found.empty()) << "more than one WAL file in " << dir;
      found = e.path().string();
    }
  }
  return found;
}

// Every face as face_id → (person, vector).
std::map<int64_t, std::pair<std::string, std::vector<float>>> Dump(const FaceDb& db) {
  std::map<int64_t, std::pair<std::string, std::vector<float>>> out;
  db.ForEach([&](int64_t id, const std::string& person, const std::vector<float>& v) {
    out[id] = {person, v};
  });
  return out;
}

bool AnyWarningContains(const FaceDb& db, const std::string& text) {
  for (const std::string& w : db.recovery_warnings()) {
    if (w.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(FaceDbTest, RoundTrip) {
  testing::TempDir dir;
  auto db = OpenDb(dir.str("db"));
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->recovery_warnings().empty());
  FaceMetadata meta;
  meta.enrolled_at_ms = 1234;
  meta.source = "door-cam";
  StatusOr<std::vector<int64_t>> alice = db->Enroll("alice", {Vec(1), Vec(2)}, meta);
  ASSERT_OK(alice);
  EXPECT_EQ(*alice, (std::vector<int64_t>{1, 2}));
  StatusOr<std::vector<int64_t>> bob = db->Enroll("bob", {Vec(3)});
  ASSERT_OK(bob);
  EXPECT_EQ(*bob, (std::vector<int64_t>{3}));

  std::vector<PersonSummary> persons = db->ListPersons();
  ASSERT_EQ(persons.size(), 2u);
  EXPECT_EQ(persons[0].person_id, "alice");
  EXPECT_EQ(persons[0].face_count, 2u);
  EXPECT_EQ(persons[1].person_id, "bob");
  EXPECT_EQ(persons[1].face_count, 1u);

  StatusOr<std::vector<Face>> faces = db->GetFaces("alice");
  ASSERT_OK(faces);
  ASSERT_EQ(faces->size(), 2u);
  EXPECT_EQ((*faces)[1].face_id, 2);
  EXPECT_EQ((*faces)[1].vector, Vec(2));
  EXPECT_EQ((*faces)[1].metadata.enrolled_at_ms, 1234);
  EXPECT_EQ((*faces)[1].metadata.source, "door-cam");
  StatusOr<Face> b = db->GetFace(3);
  ASSERT_OK(b);
  EXPECT_EQ(b->person_id, "bob");
  EXPECT_GT(b->metadata.enrolled_at_ms, 1600000000000);  // 0 became "now"
  EXPECT_EQ(db->GetFaces("carol").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(db->GetFace(99).status().code(), StatusCode::kNotFound);

  auto dump = Dump(*db);
  ASSERT_EQ(dump.size(), 3u);
  EXPECT_EQ(dump[3].first, "bob");

  FaceDbStats stats = db->Stats();
  EXPECT_EQ(stats.persons, 2u);
  EXPECT_EQ(stats.faces, 3u);
  EXPECT_EQ(stats.wal_records, 3u);
  EXPECT_EQ(stats.last_seq, 3u);
  EXPECT_EQ(stats.wal_bytes, fs::file_size(WalFile(dir.str("db"))));
  EXPECT_EQ(stats.snapshot_bytes, 0u);
  EXPECT_EQ(stats.last_snapshot_ms, 0);
}

// Face vectors are biometric data: WAL, snapshot and lock files are owner-only whatever the
// process umask allows.
TEST(FaceDbTest, DataFilesAreOwnerOnlyEvenUnderAPermissiveUmask) {
  testing::TempDir dir;
  const mode_t old_umask = ::umask(0);
  {
    auto db = OpenDb(dir.str("db"));
    ASSERT_NE(db, nullptr);
    ASSERT_OK(db->Enroll("alice", {Vec(1)}));
    ASSERT_OK(db->Checkpoint());
    ASSERT_OK(db->Enroll("bob", {Vec(2)}));
  }
  ::umask(old_umask);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.str("db"))) {
    if (!entry.is_regular_file()) continue;
    ++files;
    const fs::perms p = entry.status().permissions();
    EXPECT_EQ(p & (fs::perms::group_all | fs::perms::others_all), fs::perms::none)
        << entry.path() << " is readable or writable by others";
  }
  EXPECT_GE(files, 2);  // at least the snapshot and the active WAL
}

TEST(FaceDbTest, RestartReplaysWal) {
  testing::TempDir dir;
  std::map<int64_t, std::pair<std::string, std::vector<float>>> before;
  {
    auto db = OpenDb(dir.str("db"));
    ASSERT_OK(db->Enroll("alice", {Vec(1), Vec(2)}));
    ASSERT_OK(db->Enroll("bob", {Vec(3)}));
    ASSERT_OK(db->DeleteFace(1));
    before = Dump(*db);
  }
  auto db = OpenDb(dir.str("db"));
  EXPECT_TRUE(db->recovery_warnings().empty());
  EXPECT_EQ(Dump(*db), before);
  EXPECT_EQ(db->Stats().last_seq, 4u);
  // Ids are never reused, even the deleted one's.
  EXPECT_EQ(EnrollOne(db.get(), "carol", 4), 4);
}

TEST(FaceDbTest, ValidationNamesTheField) {
  testing::TempDir dir;
  auto db = OpenDb(dir.str("db"));
  auto expect_invalid = [](const Status& s, const std::string& field) {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(field), std::string::npos) << s.ToString();
  };
  expect_invalid(db->Enroll("", {Vec(1)}).status(), "person_id");
  expect_invalid(db->Enroll(std::string(kMaxPersonIdBytes + 1, 'x'), {Vec(1)}).status(),
                 "person_id");
  expect_invalid(db->Enroll("bad\nname", {Vec(1)}).status(), "person_id");
  expect_invalid(db->Enroll("alice", {}).status(), "vectors");
  expect_invalid(db->Enroll("alice", {Vec(1), Vec(1, kDim + 1)}).status(), "vectors[1]");
  std::vector<float> nan = Vec(1);
  nan[5] = std::numeric_limits<float>::quiet_NaN();
  expect_invalid(db->Enroll("alice", {nan}).status(), "vectors[0][5]");
  std::vector<float> inf = Vec(1);
  inf[0] = std::numeric_limits<float>::infinity();
  expect_invalid(db->Enroll("alice", {inf}).status(), "vectors[0][0]");
  FaceMetadata meta;
  meta.source = std::string(kMaxSourceBytes + 1, 's');
  expect_invalid(db->Enroll("alice", {Vec(1)}, meta).status(), "metadata.source");
  meta.source = "";
  meta.enrolled_at_ms = -5;
  expect_invalid(db->Enroll("alice", {Vec(1)}, meta).status(), "enrolled_at_ms");
  expect_invalid(db->DeletePerson("").status(), "person_id");
  // Nothing reached the log.
  EXPECT_EQ(db->Stats().wal_records, 0u);
  EXPECT_EQ(db->Stats().wal_bytes, 0u);

  EXPECT_EQ(FaceDb::Open(dir.str("other"), 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(FaceDb::Open(dir.str("other"), kMaxFaceDim + 1).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(FaceDbTest, DeletesReportNotFoundAndCounts) {
  testing::TempDir dir;
  auto db = OpenDb(dir.str("db"));
  ASSERT_OK(db->Enroll("alice", {Vec(1), Vec(2), Vec(3)}));
  ASSERT_OK(db->Enroll("bob", {Vec(4)}));
  EXPECT_EQ(db->DeleteFace(42).code(), StatusCode::kNotFound);
  EXPECT_EQ(db->DeletePerson("carol").status().code(), StatusCode::kNotFound);
  ASSERT_OK(db->DeleteFace(2));
  EXPECT_EQ(db->DeleteFace(2).code(), StatusCode::kNotFound);
  StatusOr<size_t> removed = db->DeletePerson("alice");
  ASSERT_OK(removed);
  EXPECT_EQ(*removed, 2u);
  EXPECT_EQ(db->DeletePerson("alice").status().code(), StatusCode::kNotFound);
  // Deleting a person's last face removes the person.
  ASSERT_OK(db->DeleteFace(4));
  EXPECT_TRUE(db->ListPersons().empty());
  EXPECT_EQ(db->Stats().faces, 0u);
}

TEST(FaceDbTest, DeletedFacesStayDeletedAfterRestart) {
  testing::TempDir dir;
  {
    auto db = OpenDb(dir.str("db"));
    ASSERT_OK(db->Enroll("alice", {Vec(1), Vec(2)}));
    ASSERT_OK(db->Enroll("bob", {Vec(3), Vec(4)}));
    ASSERT_OK(db->DeletePerson("alice"));
    ASSERT_OK(db->DeleteFace(4));
  }
  {
    auto db = OpenDb(dir.str("db"));
    EXPECT_EQ(db->GetFaces("alice").status().code(), StatusCode::kNotFound);
    EXPECT_EQ(db->GetFace(4).status().code(), StatusCode::kNotFound);
    ASSERT_EQ(db->ListPersons().size(), 1u);
    EXPECT_EQ(db->ListPersons()[0].face_count, 1u);
    ASSERT_OK(db->Checkpoint());
    ASSERT_OK(db->Enroll("alice", {Vec(5)}));  // the same name comes back as a new person
  }
  auto db = OpenDb(dir.str("db"));
  auto dump = Dump(*db);
  EXPECT_EQ(dump.size(), 2u);
  EXPECT_EQ(dump.count(3), 1u);
  EXPECT_EQ(dump[5].first, "alice");
}

TEST(FaceDbTest, TornTailIsTruncatedWithWarning) {
  testing::TempDir dir;
  const std::string path = dir.str("db");
  uint64_t size_after_two = 0;
  {
    auto db = OpenDb(path);
    EnrollOne(db.get(), "alice", 1);
    EnrollOne(db.get(), "alice", 2);
    size_after_two = db->Stats().wal_bytes;
    EnrollOne(db.get(), "bob", 3);
  }
  const std::string wal = WalFile(path);
  fs::resize_file(wal, fs::file_size(wal) - 7);  // the last record loses its end
  {
    auto db = OpenDb(path);
    ASSERT_EQ(db->recovery_warnings().size(), 1u);
    EXPECT_TRUE(AnyWarningContains(*db, "torn tail at offset " + std::to_string(size_after_two)))
        << db->recovery_warnings()[0];
    EXPECT_EQ(db->Stats().faces, 2u);
    EXPECT_EQ(fs::file_size(wal), size_after_two);
    // The store carries on from the last good record; the lost id is reissued since it was
    // never acknowledged.
    EXPECT_EQ(EnrollOne(db.get(), "bob", 3), 3);
  }
  // Garbage after the last record (say, a half-written batch) is cut off the same way.
  {
    std::ofstream out(wal, std::ios::binary | std::ios::app);
    out << "\x13\x37 partial garbage";
  }
  auto db = OpenDb(path);
  ASSERT_EQ(db->recovery_warnings().size(), 1u);
  EXPECT_TRUE(AnyWarningContains(*db, "torn tail"));
  EXPECT_EQ(db->Stats().faces, 3u);
}

TEST(FaceDbTest, CorruptRecordInTheMiddleIsSkippedAndLaterRecordsKept) {
  testing::TempDir dir;
  const std::string path = dir.str("db");
  std::vector<uint64_t> offsets;  // where each enroll's record starts
  {
    auto db = OpenDb(path);
    for (int i = 1; i <= 5; ++i) {
      offsets.push_back(db->Stats().wal_bytes);
      EnrollOne(db.get(), "p" + std::to_string(i), static_cast<float>(i));
    }
  }
  const std::string wal = WalFile(path);
  std::string bytes = ReadAll(wal);
  bytes[offsets[2] + 40] ^= 0x10;  // inside record 3
  WriteAll(wal, bytes);
  {
    auto db = OpenDb(path);
    ASSERT_FALSE(db->recovery_warnings().empty());
    EXPECT_TRUE(AnyWarningContains(*db, "corrupt record at offset " + std::to_string(offsets[2])))
        << db->recovery_warnings()[0];
    auto dump = Dump(*db);
    EXPECT_EQ(dump.size(), 4u);
    EXPECT_EQ(dump.count(3), 0u);
    for (int64_t id : {1, 2, 4, 5}) {
      ASSERT_EQ(dump.count(id), 1u) << id;
      EXPECT_EQ(dump[id].second, Vec(static_cast<float>(id)));
    }
    EXPECT_EQ(EnrollOne(db.get(), "p6", 6), 6);
  }
  {
    // The damage is still in the log, so it is reported again, and a checkpoint clears it.
    auto db = OpenDb(path);
    EXPECT_TRUE(AnyWarningContains(*db, "corrupt record"));
    EXPECT_EQ(db->Stats().faces, 5u);
    ASSERT_OK(db->Checkpoint());
  }
  auto db = OpenDb(path);
  EXPECT_TRUE(db->recovery_warnings().empty());
  EXPECT_EQ(db->Stats().faces, 5u);
}

TEST(FaceDbTest, CorruptSnapshotIsDataLossNamingTheFile) {
  testing::TempDir dir;
  const std::string path = dir.str("db");
  {
    auto db = OpenDb(path);
    ASSERT_OK(db->Enroll("alice", {Vec(1), Vec(2)}));
    ASSERT_OK(db->Checkpoint());
  }
  const std::string snapshot = (fs::path(path) / kSnapshotFileName).string();
  const std::string good = ReadAll(snapshot);
  auto expect_data_loss = [&](const std::string& bytes, const std::string& what) {
    WriteAll(snapshot, bytes);
    StatusOr<std::unique_ptr<FaceDb>> db = FaceDb::Open(path, kDim);
    EXPECT_EQ(db.status().code(), StatusCode::kDataLoss) << what << ": " << db.status().ToString();
    EXPECT_NE(db.status().message().find(snapshot), std::string::npos) << db.status().ToString();
  };
  std::string body_flip = good;
  body_flip[kSnapshotHeaderBytes + 30] ^= 0x01;
  expect_data_loss(body_flip, "body bit flip");
  std::string header_flip = good;
  header_flip[20] ^= 0x01;
  expect_data_loss(header_flip, "header bit flip");
  expect_data_loss(good.substr(0, good.size() - 3), "truncated body");
  expect_data_loss(good.substr(0, 10), "truncated header");
  expect_data_loss(std::string(good.size(), 'x'), "not a snapshot");
  // Restored, it opens again: nothing was rewritten by the failed opens.
  WriteAll(snapshot, good);
  auto db = OpenDb(path);
  EXPECT_EQ(db->Stats().faces, 2u);
}

TEST(SnapshotTest, EverySingleByteFlipIsDataLoss) {
  testing::TempDir dir;
  {
    StatusOr<std::unique_ptr<SnapshotWriter>> writer = SnapshotWriter::Create(dir.str(""), 4);
    ASSERT_OK(writer);
    for (int64_t id : {3, 8}) {
      Face face{id, "person-" + std::to_string(id), Vec(static_cast<float>(id), 4), {77, "cam"}};
      ASSERT_OK((*writer)->Add(face));
    }
    SnapshotInfo info;
    info.next_face_id = 9;
    info.last_seq = 12;
    info.wal_generation = 3;
    ASSERT_OK((*writer)->Commit(info));
  }
  const std::string path = dir.str(kSnapshotFileName);
  const std::string good = ReadAll(path);
  std::vector<Face> faces;
  StatusOr<SnapshotInfo> info = ReadSnapshot(path, 4, [&](Face&& f) {
    faces.push_back(std::move(f));
    return Status::Ok();
  });
  ASSERT_OK(info);
  EXPECT_EQ(info->face_count, 2u);
  EXPECT_EQ(info->next_face_id, 9);
  EXPECT_EQ(info->last_seq, 12u);
  EXPECT_EQ(info->wal_generation, 3u);
  ASSERT_EQ(faces.size(), 2u);
  EXPECT_EQ(faces[1].person_id, "person-8");
  EXPECT_EQ(faces[1].metadata.source, "cam");
  EXPECT_EQ(faces[1].vector, Vec(8, 4));
  for (size_t at = 0; at < good.size(); ++at) {
    std::string bad = good;
    bad[at] ^= 0x20;
    WriteAll(path, bad);
    size_t delivered = 0;
    StatusOr<SnapshotInfo> r = ReadSnapshot(path, 4, [&](Face&&) {
      ++delivered;
      return Status::Ok();
    });
    ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << "byte " << at;
    ASSERT_NE(r.status().message().find(path), std::string::npos);
    ASSERT_EQ(delivered, 0u) << "a damaged snapshot handed out faces";
  }
}

TEST(FaceDbTest, CompactionRemovesDeletedBytesFromEveryFile) {
  testing::TempDir dir;
  const std::string path = dir.str("db");
  const std::string secret_person = "mallory-7f3a9c";
  std::vector<float> secret(kDim);
  for (int j = 0; j < kDim; ++j) secret[static_cast<size_t>(j)] = 1234.5678f + 17.25f * j;
  const std::string secret_bytes(reinterpret_cast<const char*>(secret.data()),
                                 secret.size() * sizeof(float));
  auto files_containing = [&](const std::string& needle) {
    std::vector<std::string> hits;
    for (const auto& e : fs::directory_iterator(path)) {
      if (ReadAll(e.path().string()).find(needle) != std::string::npos) {
        hits.push_back(e.path().filename().string());
      }
    }
    return hits;
  };

  auto db = OpenDb(path);
  ASSERT_OK(db->Enroll("alice", {Vec(1), Vec(2)}));
  ASSERT_OK(db->Checkpoint());  // the secret must also vanish from a rewritten snapshot
  ASSERT_OK(db->Enroll(secret_person, {secret, Vec(3)}));
  ASSERT_OK(db->Enroll("bob", {Vec(4)}));
  ASSERT_OK(db->Checkpoint());
  ASSERT_OK(db->Enroll("carol", {Vec(5)}));
  // Before: the scan finds both (so it can fail).
  EXPECT_EQ(files_containing(secret_bytes), std::vector<std::string>{kSnapshotFileName});
  EXPECT_FALSE(files_containing(secret_person).empty());

  StatusOr<size_t> removed = db->DeletePerson(secret_person);
  ASSERT_OK(removed);
  EXPECT_EQ(*removed, 2u);
  EXPECT_FALSE(files_containing(secret_bytes).empty());  // still in the snapshot until compaction
  ASSERT_OK(db->Checkpoint());
  EXPECT_TRUE(files_containing(secret_bytes).empty());
  EXPECT_TRUE(files_containing(secret_person).empty());
  // What remains is complete.
  db.reset();
  db = OpenDb(path);
  EXPECT_TRUE(db->recovery_warnings().empty());
  auto dump = Dump(*db);
  EXPECT_EQ(dump.size(), 4u);
  EXPECT_EQ(dump[6].first, "carol");  // alice 1-2, mallory 3-4, bob 5, carol 6
  EXPECT_EQ(db->GetFaces(secret_person).status().code(), StatusCode::kNotFound);
}

TEST(FaceDbTest, CompactedBytesWereInTheWalBeforeCheckpoint) {
  testing::TempDir dir;
  const std::string path = dir.str("db");
  auto db = OpenDb(path);
  std::vector<float> secret = Vec(4242.0f);
  const std::string secret_bytes(reinterpret_cast<const char*>(secret.data()),
                                 secret.size() * sizeof(float));
  ASSERT_OK(db->Enroll("trudy-unique", {secret}));
  ASSERT_OK(db->Enroll("alice", {Vec(1)}));
  ASSERT_OK(db->DeletePerson("trudy-unique"));
  const std::string wal_before = WalFile(path);
  EXPECT_NE(ReadAll(wal_before).find(secret_bytes), std::string::npos);
  EXPECT_NE(ReadAll(wal_before).find("trudy-unique"), std::string::npos);
  ASSERT_OK(db->Checkpoint());
  EXPECT_FALSE(fs::exists(wal_before));
  for (const auto& e : fs::directory_iterator(path)) {
    const std::string content = ReadAll(e.path().string());
    EXPECT_EQ(content.find(secret_bytes), std::string::npos) << e.path();
    EXPECT_EQ(content.find("trudy-unique"), std::string::npos) << e.path();
  }
  FaceDbStats stats = db->Stats();
  EXPECT_EQ(stats.wal_bytes, 0u);
  EXPECT_GT(stats.snapshot_bytes, 0u);
  EXPECT_GT(stats.last_snapshot_ms, 0);
  EXPECT_EQ(stats.checkpoints, 1u);
}

TEST(FaceDbTest, AutoCheckpointKeepsTheWalSmall) {
  testing::TempDir dir;
  const std::string path = dir.str("db");
  FaceDbOptions options;
  options.checkpoint_wal_bytes = 1024;
  {
    auto db = OpenDb(path, options);
    for (int i = 0; i < 30; ++i) EnrollOne(db.get(), "p" + std::to_string(i % 4), i);
    FaceDbStats stats = db->Stats();
    EXPECT_GE(stats.checkpoints, 3u);
    EXPECT_LT(stats.wal_bytes, 1024u + 200u);
    EXPECT_EQ(stats.last_auto_checkpoint_error, "");
    EXPECT_TRUE(fs::exists(fs::path(path) / kSnapshotFileName));
  }
  auto db = OpenDb(path, options);
  EXPECT_TRUE(db->recovery_warnings().empty());
  auto dump = Dump(*db);
  ASSERT_EQ(dump.size(), 30u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(dump[i + 1].second, Vec(i));
}

TEST(FaceDbTest, StaleWalCoveredBySnapshotIsIgnoredAndRemoved) {
  // A crash between a checkpoint's snapshot rename and its deletion of the old WAL.
  testing::TempDir dir;
  const std::string path = dir.str("db");
  std::string old_wal_name;
  std::string old_wal_bytes;
  {
    auto db = OpenDb(path);
    ASSERT_OK(db->Enroll("alice", {Vec(1), Vec(2)}));
    ASSERT_OK(db->DeleteFace(1));
    old_wal_name = WalFile(path);
    old_wal_bytes = ReadAll(old_wal_name);
    ASSERT_OK(db->Checkpoint());
    ASSERT_OK(db->Enroll("bob", {Vec(3)}));
  }
  WriteAll(old_wal_name, old_wal_bytes);
  auto db = OpenDb(path);
  EXPECT_TRUE(db->recovery_warnings().empty());
  EXPECT_FALSE(fs::exists(old_wal_name));
  auto dump = Dump(*db);
  EXPECT_EQ(dump.size(), 2u);
  EXPECT_EQ(dump.count(1), 0u);
}

TEST(FaceDbTest, CheckpointInterruptedBeforeSnapshotReplaysBothWals) {
  // A crash after a checkpoint created the new WAL file but before its snapshot: two WAL
  // files, no snapshot covering the first.
  testing::TempDir dir;
  const std::string path = dir.str("db");
  {
    auto db = OpenDb(path);
    ASSERT_OK(db->Enroll("alice", {Vec(1)}));
  }
  WriteAll((fs::path(path) / "wal-0000000002.log").string(), "");
  {
    auto db = OpenDb(path);
    EXPECT_TRUE(db->recovery_warnings().empty());
    ASSERT_OK(db->Enroll("bob", {Vec(2)}));  // goes to the newest file
    EXPECT_EQ(db->Stats().faces, 2u);
  }
  auto db = OpenDb(path);
  EXPECT_EQ(Dump(*db).size(), 2u);
  ASSERT_OK(db->Checkpoint());
  EXPECT_EQ(WalFile(path), (fs::path(path) / "wal-0000000003.log").string());
}

TEST(FaceDbTest, MissingSnapshotUnderLaterWalIsDataLoss) {
  testing::TempDir dir;
  const std::string path = dir.str("db");
  {
    auto db = OpenDb(path);
    ASSERT_OK(db->Enroll("alice", {Vec(1)}));
    ASSERT_OK(db->Checkpoint());
  }
  fs::remove(fs::path(path) / kSnapshotFileName);
  EXPECT_EQ(FaceDb::Open(path, kDim).status().code(), StatusCode::kDataLoss);
}

TEST(FaceDbTest, OneOpenerAtATimeAndDimIsChecked) {
  testing::TempDir dir;
  const std::string path = dir.str("db");
  {
    auto db = OpenDb(path);
    ASSERT_OK(db->Enroll("alice", {Vec(1)}));
    StatusOr<std::unique_ptr<FaceDb>> second = FaceDb::Open(path, kDim);
    EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition)
        << second.status().ToString();
  }
  // WAL only, then snapshot: both remember the dim.
  EXPECT_EQ(FaceDb::Open(path, kDim * 2).status().code(), StatusCode::kFailedPrecondition);
  {
    auto db = OpenDb(path);
    ASSERT_OK(db->Checkpoint());
  }
  StatusOr<std::unique_ptr<FaceDb>> wrong = FaceDb::Open(path, kDim * 2);
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(wrong.status().message().find("dim"), std::string::npos);
}

TEST(FaceDbTest, GroupCommitSharesFsyncsAcrossEnrollingThreads) {
  testing::TempDir dir;
  const std::string path = dir.str("db");
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::map<int64_t, std::pair<std::string, std::vector<float>>> expected;
  std::mutex expected_mu;
  {
    auto db = OpenDb(path);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        for (int i = 0; i < kPerThread; ++i) {
          const std::string person = "t" + std::to_string(t);
          const float seed = static_cast<float>(t * 100 + i);
          StatusOr<std::vector<int64_t>> ids = db->Enroll(person, {Vec(seed)});
          ASSERT_TRUE(ids.ok()) << ids.status().ToString();
          std::lock_guard<std::mutex> lock(expected_mu);
          expected[ids->at(0)] = {person, Vec(seed)};
        }
      });
    }
    for (std::thread& t : threads) t.join();
    const FaceDbStats stats = db->Stats();
    const uint64_t enrolls = kThreads * kPerThread;
    EXPECT_EQ(stats.wal_records, enrolls);
    EXPECT_LT(stats.wal_syncs, enrolls) << "no fsync was shared";
    std::cout << "FaceDb group commit: " << enrolls << " enrolls, " << stats.wal_syncs
              << " fdatasyncs\n";
    EXPECT_EQ(Dump(*db), expected);
  }
  auto db = OpenDb(path);
  EXPECT_EQ(Dump(*db), expected);
}

TEST(FaceDbTest, ConcurrentMutationsReadsAndCheckpointsStayConsistent) {
  testing::TempDir dir;
  const std::string path = dir.str("db");
  FaceDbOptions options;
  options.checkpoint_wal_bytes = 8 * 1024;
  std::map<int64_t, std::pair<std::string, std::vector<float>>> final_state;
  {
    auto db = OpenDb(path, options);
    std::atomic<bool> stop{false};
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(t);
        for (int i = 0; i < 40; ++i) {
          const std::string person = "p" + std::to_string(rng() % 6);
          switch (rng() % 4) {
            case 0:
            case 1:
              if (!db->Enroll(person, {Vec(static_cast<float>(rng() % 1000))}).ok()) ++errors;
              break;
            case 2: {
              const Status s = db->DeleteFace(1 + static_cast<int64_t>(rng() % 100));
              if (!s.ok() && s.code() != StatusCode::kNotFound) ++errors;
              break;
            }
            default: {
              const Status s = db->DeletePerson(person).status();
              if (!s.ok() && s.code() != StatusCode::kNotFound) ++errors;
            }
          }
        }
      });
    }
    threads.emplace_back([&] {
      while (!stop.load()) {
        // Readers never see a person without faces, nor a face without its person.
        for (const PersonSummary& p : db->ListPersons()) {
          if (p.face_count == 0) ++errors;
        }
        db->ForEach([&](int64_t id, const std::string& person, const std::vector<float>& v) {
          if (person.empty() || v.size() != static_cast<size_t>(kDim)) ++errors;
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    threads.emplace_back([&] {
      for (int i = 0; i < 3 && !stop.load(); ++i) {
        if (!db->Checkpoint().ok()) ++errors;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
    for (size_t i = 0; i < 4; ++i) threads[i].join();
    stop = true;
    for (size_t i = 4; i < threads.size(); ++i) threads[i].join();
    EXPECT_EQ(errors.load(), 0);
    final_state = Dump(*db);
    size_t total = 0;
    for (const PersonSummary& p : db->ListPersons()) total += p.face_count;
    EXPECT_EQ(total, final_state.size());
  }
  // What memory said is exactly what the files say.
  auto db = OpenDb(path, options);
  EXPECT_TRUE(db->recovery_warnings().empty());
  EXPECT_EQ(Dump(*db), final_state);
}

// ---- kill -9 ----

struct Ack {
  int64_t face_id;
  int32_t round;
  int32_t thread;
  int64_t index;
};
static_assert(sizeof(Ack) <= PIPE_BUF, "acks must be written atomically");

constexpr int kCrashDim = 64;
constexpr int kCrashThreads = 4;

std::string CrashPerson(int round, int thread) {
  return "r" + std::to_string(round) + "-t" + std::to_string(thread);
}

std::vector<float> CrashVector(int round, int thread, int64_t index) {
  std::vector<float> v(kCrashDim);
  for (int j = 0; j < kCrashDim; ++j) {
    v[static_cast<size_t>(j)] = static_cast<float>(round * 100000 + thread * 10000 + index) +
                                0.125f * static_cast<float>(j);
  }
  return v;
}

// The child: enrolls from several threads as fast as it can and reports every face id whose
// Enroll returned, until it is killed. Never returns.
[[noreturn]] void CrashChild(const std::string& path, const FaceDbOptions& options, int round,
                             int ack_fd) {
  ::signal(SIGPIPE, SIG_IGN);
  StatusOr<std::unique_ptr<FaceDb>> db = FaceDb::Open(path, options);
  if (!db.ok()) {
    std::cerr << "child: " << db.status().ToString() << "\n";
    ::_exit(2);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kCrashThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = 0;; ++i) {
        StatusOr<std::vector<int64_t>> ids =
            (*db)->Enroll(CrashPerson(round, t), {CrashVector(round, t, i)});
        if (!ids.ok()) {
          std::cerr << "child: " << ids.status().ToString() << "\n";
          ::_exit(3);
        }
        const Ack ack{ids->at(0), round, t, i};
        if (::write(ack_fd, &ack, sizeof(ack)) != sizeof(ack)) ::_exit(4);
      }
    });
  }
  for (;;) ::pause();
}

TEST(FaceDbCrashTest, EveryAcknowledgedEnrollSurvivesKill9) {
  testing::TempDir dir;
  const std::string path = dir.str("db");
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("random seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::vector<Ack> acked;
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    FaceDbOptions options;
    options.dim = kCrashDim;
    // Later rounds checkpoint every few dozen records, so kills land inside checkpoints too.
    if (round >= 2) options.checkpoint_wal_bytes = 16 * 1024;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      CrashChild(path, options, round, fds[1]);
    }
    ::close(fds[1]);
    const auto kill_after = std::chrono::milliseconds(20 + rng() % 300);
    std::chrono::steady_clock::time_point first_ack{};
    bool killed = false;
    size_t round_acks = 0;
    std::string pending;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (true) {
      if (!killed && round_acks > 0 && std::chrono::steady_clock::now() - first_ack >= kill_after) {
        ::kill(pid, SIGKILL);
        killed = true;
      }
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "child made no progress";
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 5) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;  // EOF: the child is gone and every ack it wrote has been read
      pending.append(buf, static_cast<size_t>(n));
      while (pending.size() >= sizeof(Ack)) {
        Ack ack;
        std::memcpy(&ack, pending.data(), sizeof(Ack));
        pending.erase(0, sizeof(Ack));
        acked.push_back(ack);
        if (round_acks++ == 0) first_ack = std::chrono::steady_clock::now();
      }
    }
    ::close(fds[0]);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
        << "the child ended on its own (exit " << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1)
        << ") instead of being killed";
    EXPECT_TRUE(pending.empty());
    EXPECT_GT(round_acks, 0u);

    StatusOr<std::unique_ptr<FaceDb>> db = FaceDb::Open(path, options);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    for (const std::string& w : (*db)->recovery_warnings()) {
      EXPECT_NE(w.find("torn tail"), std::string::npos) << "unexpected damage: " << w;
    }
    size_t missing = 0;
    for (const Ack& ack : acked) {
      StatusOr<Face> face = (*db)->GetFace(ack.face_id);
      if (!face.ok()) {
        if (++missing < 5) ADD_FAILURE() << "acknowledged face " << ack.face_id << " is lost";
        continue;
      }
      EXPECT_EQ(face->person_id, CrashPerson(ack.round, ack.thread));
      EXPECT_EQ(face->vector, CrashVector(ack.round, ack.thread, ack.index));
    }
    EXPECT_EQ(missing, 0u);
    std::cout << "crash round " << round << ": killed after " << kill_after.count() << " ms, "
              << round_acks << " acks this round, " << (*db)->Stats().faces << " faces on disk, "
              << (*db)->recovery_warnings().size() << " warnings\n";
  }
}

// ---------------------------------------------------------------- enroll request ids (issue 10)

StatusOr<EnrollResult> EnrollWithId(FaceDb* db, const std::string& person, float seed,
                                    const std::string& request_id, int faces = 1) {
  std::vector<std::vector<float>> vectors;
  for (int i = 0; i < faces; ++i) vectors.push_back(Vec(seed + static_cast<float>(i)));
  EnrollOptions options;
  options.request_id = request_id;
  return db->Enroll(person, vectors, {}, options);
}

TEST(FaceDbRequestIdTest, SameRequestIdTwiceEnrollsOnceAndReplaysTheFirstResult) {
  testing::TempDir dir;
  auto db = OpenDb(dir.str("db"));
  StatusOr<EnrollResult> first = EnrollWithId(db.get(), "alice", 1, "req-1", 2);
  ASSERT_OK(first);
  EXPECT_FALSE(first->replayed);
  StatusOr<EnrollResult> again = EnrollWithId(db.get(), "alice", 5, "req-1", 2);
  ASSERT_OK(again);
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->face_ids, first->face_ids);
  EXPECT_EQ(db->Stats().faces, 2u);
  // Another person under a used id is a client bug, named as such.
  StatusOr<EnrollResult> other = EnrollWithId(db.get(), "bob", 1, "req-1");
  EXPECT_EQ(other.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other.status().message().find("already used to enroll \"alice\""), std::string::npos)
      << other.status().ToString();
  StatusOr<EnrollResult> bad = EnrollWithId(db.get(), "bob", 1, std::string("r\n", 2));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(db->Stats().faces, 2u);
}

TEST(FaceDbRequestIdTest, RequestIdSurvivesWalReplay) {
  testing::TempDir dir;
  std::vector<int64_t> ids;
  {
    auto db = OpenDb(dir.str("db"));
    StatusOr<EnrollResult> first = EnrollWithId(db.get(), "alice", 1, "req-wal", 3);
    ASSERT_OK(first);
    ids = first->face_ids;
  }
  auto db = OpenDb(dir.str("db"));
  EXPECT_TRUE(db->recovery_warnings().empty());
  std::optional<RememberedEnroll> remembered = db->FindRequest("req-wal");
  ASSERT_TRUE(remembered.has_value());
  EXPECT_EQ(remembered->person_id, "alice");
  EXPECT_EQ(remembered->face_ids, ids);
  StatusOr<EnrollResult> retry = EnrollWithId(db.get(), "alice", 1, "req-wal", 3);
  ASSERT_OK(retry);
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->face_ids, ids);
  EXPECT_EQ(db->Stats().faces, 3u);
  EXPECT_EQ(Dump(*db).at(ids[2]).second, Vec(3));
}

TEST(FaceDbRequestIdTest, RequestIdSurvivesSnapshotAndTheWindowIsBounded) {
  testing::TempDir dir;
  FaceDbOptions options;
  options.remembered_requests = 2;
  std::vector<int64_t> ids3;
  {
    auto db = OpenDb(dir.str("db"), options);
    ASSERT_OK(EnrollWithId(db.get(), "a", 1, "r1"));
    ASSERT_OK(EnrollWithId(db.get(), "b", 2, "r2"));
    StatusOr<EnrollResult> third = EnrollWithId(db.get(), "c", 3, "r3");
    ASSERT_OK(third);
    ids3 = third->face_ids;
    EXPECT_FALSE(db->FindRequest("r1").has_value()) << "the oldest id beyond the window stays";
    ASSERT_OK(db->Checkpoint());
    EXPECT_EQ(db->Stats().wal_bytes, 0u);
  }
  auto db = OpenDb(dir.str("db"), options);  // from the snapshot alone
  EXPECT_FALSE(db->FindRequest("r1").has_value());
  ASSERT_TRUE(db->FindRequest("r2").has_value());
  ASSERT_TRUE(db->FindRequest("r3").has_value());
  EXPECT_EQ(db->FindRequest("r3")->face_ids, ids3);
  StatusOr<EnrollResult> retry = EnrollWithId(db.get(), "c", 3, "r3");
  ASSERT_OK(retry);
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(db->Stats().faces, 3u);
}

TEST(FaceDbRequestIdTest, ConcurrentCallsWithOneRequestIdEnrollOnce) {
  testing::TempDir dir;
  auto db = OpenDb(dir.str("db"));
  constexpr int kThreads = 8;
  std::vector<StatusOr<EnrollResult>> results(kThreads, Status(StatusCode::kUnknown, "not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { results[t] = EnrollWithId(db.get(), "alice", 1, "same", 2); });
  }
  for (std::thread& t : threads) t.join();
  int fresh = 0;
  for (const auto& r : results) {
    ASSERT_OK(r);
    if (!r->replayed) ++fresh;
    EXPECT_EQ(r->face_ids, results[0]->face_ids);
  }
  EXPECT_EQ(fresh, 1);
  EXPECT_EQ(db->Stats().faces, 2u);
}

TEST(FaceDbRequestIdTest, FailedBeforeCommitCheckWritesNothing) {
  testing::TempDir dir;
  auto db = OpenDb(dir.str("db"));
  EnrollOptions options;
  options.request_id = "given-up";
  options.before_commit = [] { return DeadlineExceeded("the client gave up"); };
  StatusOr<EnrollResult> r = db->Enroll("alice", {Vec(1)}, {}, options);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(db->Stats().faces, 0u);
  EXPECT_EQ(db->Stats().wal_records, 0u);
  EXPECT_FALSE(db->FindRequest("given-up").has_value());
  // The retry (the caller still waiting this time) enrolls.
  options.before_commit = nullptr;
  r = db->Enroll("alice", {Vec(1)}, {}, options);
  ASSERT_OK(r);
  EXPECT_FALSE(r->replayed);
  EXPECT_EQ(db->Stats().faces, 1u);
}

TEST(FaceDbRequestIdTest, DeletingAPersonForgetsTheirRequestIdsInEveryFile) {
  testing::TempDir dir;
  const std::string person = "erase-me-7f3a";
  {
    auto db = OpenDb(dir.str("db"));
    ASSERT_OK(EnrollWithId(db.get(), person, 1, "req-a", 2));
    StatusOr<EnrollResult> kept = EnrollWithId(db.get(), "keep", 3, "req-b");
    ASSERT_OK(kept);
    ASSERT_OK(db->Checkpoint());  // the snapshot remembers both requests
    ASSERT_OK(db->DeletePerson(person));
    EXPECT_FALSE(db->FindRequest("req-a").has_value());
    ASSERT_OK(db->Checkpoint());
    for (const auto& e : fs::directory_iterator(dir.str("db"))) {
      EXPECT_EQ(ReadAll(e.path().string()).find(person), std::string::npos)
          << e.path() << " still holds the deleted person's id";
    }
  }
  auto db = OpenDb(dir.str("db"));
  EXPECT_FALSE(db->FindRequest("req-a").has_value());
  ASSERT_TRUE(db->FindRequest("req-b").has_value());
  StatusOr<EnrollResult> again = EnrollWithId(db.get(), person, 1, "req-a");
  ASSERT_OK(again);
  EXPECT_FALSE(again->replayed);
}

// A snapshot as builds before request ids wrote it (format version 1: faces only).
std::string VersionOneSnapshot(const std::vector<Face>& faces, int dim, int64_t next_face_id,
                               uint64_t last_seq) {
  std::string body;
  for (const Face& f : faces) {
    coding::PutFixed<int64_t>(&body, f.face_id);
    coding::PutFixed<int64_t>(&body, f.metadata.enrolled_at_ms);
    coding::PutString16(&body, f.person_id);
    coding::PutString16(&body, f.metadata.source);
    coding::PutFloats(&body, f.vector);
  }
  std::string h("DTEMBSNP", 8);
  coding::PutFixed<uint32_t>(&h, 1);
  coding::PutFixed<uint32_t>(&h, static_cast<uint32_t>(dim));
  coding::PutFixed<uint64_t>(&h, faces.size());
  coding::PutFixed<int64_t>(&h, next_face_id);
  coding::PutFixed<uint64_t>(&h, last_seq);
  coding::PutFixed<uint64_t>(&h, 1);  // wal_generation
  coding::PutFixed<int64_t>(&h, 1700000000000);
  coding::PutFixed<uint64_t>(&h, body.size());
  coding::PutFixed<uint32_t>(&h, Crc32c(body.data(), body.size()));
  coding::PutFixed<uint32_t>(&h, Crc32c(h.data(), h.size()));
  EXPECT_EQ(h.size(), kSnapshotHeaderBytes);
  return h + body;
}

TEST(FaceDbRequestIdTest, VersionOneSnapshotStillLoadsAndIsRewrittenAsTheNewVersion) {
  testing::TempDir dir;
  const std::string db_dir = dir.str("db");
  fs::create_directories(db_dir);
  WriteAll(
      db_dir + "/" + kSnapshotFileName,
      VersionOneSnapshot({Face{4, "alice", Vec(4), {11, "cam"}}, Face{7, "bob", Vec(7), {12, ""}}},
                         kDim, 8, 9));
  {
    auto db = OpenDb(db_dir);
    ASSERT_NE(db, nullptr);
    const auto faces = Dump(*db);
    ASSERT_EQ(faces.size(), 2u);
    EXPECT_EQ(faces.at(4).first, "alice");
    EXPECT_EQ(faces.at(7).second, Vec(7));
    StatusOr<EnrollResult> r = EnrollWithId(db.get(), "carol", 9, "after-upgrade");
    ASSERT_OK(r);
    EXPECT_EQ(r->face_ids, std::vector<int64_t>{8});
    ASSERT_OK(db->Checkpoint());
  }
  const std::string bytes = ReadAll(db_dir + "/" + kSnapshotFileName);
  EXPECT_EQ(coding::LoadFixed<uint32_t>(bytes.data() + 8), kSnapshotVersion);
  auto db = OpenDb(db_dir);
  EXPECT_EQ(db->Stats().faces, 3u);
  ASSERT_TRUE(db->FindRequest("after-upgrade").has_value());
}

}  // namespace
}  // namespace dtrain::embed
