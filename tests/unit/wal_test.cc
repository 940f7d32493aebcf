// WAL framing, replay of damaged files, and group commit.
#include "workers/embedding_store/storage/wal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"
#include "workers/embedding_store/storage/crc32c.h"

namespace dtrain::embed {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

WalEntry Enroll(int64_t id, const std::string& person, int dim = 8) {
  EnrollFaceRecord e;
  e.face.face_id = id;
  e.face.person_id = person;
  e.face.metadata.enrolled_at_ms = 1700000000000 + id;
  e.face.metadata.source = "cam-" + std::to_string(id);
  for (int j = 0; j < dim; ++j) e.face.vector.push_back(static_cast<float>(id) + 0.25f * j);
  return e;
}

struct Replayed {
  std::vector<WalRecord> records;
  WalReplayReport report;
};

Replayed Replay(const std::string& path, bool truncate = true) {
  Replayed out;
  WalReplayOptions options;
  options.truncate_torn_tail = truncate;
  StatusOr<WalReplayReport> report = ReplayWal(path, options, [&](WalRecord&& r) {
    out.records.push_back(std::move(r));
    return Status::Ok();
  });
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  if (report.ok()) out.report = *report;
  return out;
}

std::vector<uint64_t> Seqs(const Replayed& r) {
  std::vector<uint64_t> seqs;
  for (const WalRecord& rec : r.records) seqs.push_back(rec.seq);
  return seqs;
}

// Writes four records (seq 1..4) and returns the offset at which each starts, plus the end.
std::vector<size_t> WriteFour(const std::string& path) {
  std::string bytes;
  std::vector<size_t> offsets;
  const std::vector<WalEntry> entries = {Enroll(1, "alice"), Enroll(2, "bob"), DeleteFaceRecord{1},
                                         DeletePersonRecord{"bob"}};
  for (size_t i = 0; i < entries.size(); ++i) {
    offsets.push_back(bytes.size());
    bytes += EncodeWalRecord(i + 1, entries[i]);
  }
  offsets.push_back(bytes.size());
  WriteAll(path, bytes);
  return offsets;
}

TEST(Crc32cTest, KnownAnswers) {
  // RFC 3720 (iSCSI) appendix B.4 test vectors, and the classic check value.
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  std::string ones(32, '\xFF');
  EXPECT_EQ(Crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(ascending.data(), ascending.size()), 0x46DD794Eu);
  // Extending in pieces equals one pass, at every split point (exercises the 8-byte path).
  const std::string text = "the quick brown fox jumps over the lazy dog, twice over";
  for (size_t split = 0; split <= text.size(); ++split) {
    EXPECT_EQ(Crc32cExtend(Crc32c(text.data(), split), text.data() + split, text.size() - split),
              Crc32c(text.data(), text.size()));
  }
}

TEST(WalTest, EncodeReplayRoundTrip) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  WriteFour(path);
  Replayed r = Replay(path);
  ASSERT_EQ(r.records.size(), 4u);
  EXPECT_TRUE(r.report.warnings.empty());
  EXPECT_EQ(Seqs(r), (std::vector<uint64_t>{1, 2, 3, 4}));
  const auto& e = std::get<EnrollFaceRecord>(r.records[0].entry).face;
  EXPECT_EQ(e.face_id, 1);
  EXPECT_EQ(e.person_id, "alice");
  EXPECT_EQ(e.metadata.enrolled_at_ms, 1700000000001);
  EXPECT_EQ(e.metadata.source, "cam-1");
  EXPECT_EQ(e.vector, std::get<EnrollFaceRecord>(Enroll(1, "alice")).face.vector);
  EXPECT_EQ(std::get<DeleteFaceRecord>(r.records[2].entry).face_id, 1);
  EXPECT_EQ(std::get<DeletePersonRecord>(r.records[3].entry).person_id, "bob");
  EXPECT_EQ(r.report.last_seq, 4u);
  EXPECT_EQ(r.report.end_offset, fs::file_size(path));
}

// Found by tests/fuzz/fuzz_wal under UBSan: decoding a zero-length vector passed a null pointer
// to memcpy (undefined even for 0 bytes). Empty strings and vectors must round-trip.
TEST(WalTest, EmptyVectorAndStringsRoundTrip) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  WalEntry empty = Enroll(7, "", /*dim=*/0);
  std::get<EnrollFaceRecord>(empty).face.metadata.source.clear();
  WriteAll(path, EncodeWalRecord(1, empty) + EncodeWalRecord(2, DeletePersonRecord{""}));
  Replayed r = Replay(path);
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_TRUE(r.report.warnings.empty());
  const Face& face = std::get<EnrollFaceRecord>(r.records[0].entry).face;
  EXPECT_EQ(face.face_id, 7);
  EXPECT_TRUE(face.vector.empty());
  EXPECT_TRUE(face.person_id.empty());
  EXPECT_TRUE(face.metadata.source.empty());
  EXPECT_EQ(std::get<DeletePersonRecord>(r.records[1].entry).person_id, "");
}

TEST(WalTest, TornTailCutMidRecordIsTruncated) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  const std::vector<size_t> off = WriteFour(path);
  fs::resize_file(path, off[3] + 10);  // the fourth record loses its last bytes
  Replayed r = Replay(path);
  EXPECT_EQ(Seqs(r), (std::vector<uint64_t>{1, 2, 3}));
  ASSERT_EQ(r.report.warnings.size(), 1u);
  EXPECT_NE(r.report.warnings[0].find("torn tail at offset " + std::to_string(off[3])),
            std::string::npos)
      << r.report.warnings[0];
  EXPECT_EQ(fs::file_size(path), off[3]);
  // Replaying again is clean: the repair is on disk.
  Replayed again = Replay(path);
  EXPECT_EQ(again.records.size(), 3u);
  EXPECT_TRUE(again.report.warnings.empty());
}

TEST(WalTest, TornHeaderAndGarbageTailAreTruncated) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  const std::vector<size_t> off = WriteFour(path);
  fs::resize_file(path, off[3] + 5);  // only part of the header made it
  EXPECT_EQ(Replay(path).records.size(), 3u);
  EXPECT_EQ(fs::file_size(path), off[3]);

  std::string bytes = ReadAll(path);
  bytes += std::string("\x17\x99garbage that is not a record at all \x01\x02\x03", 42);
  WriteAll(path, bytes);
  Replayed r = Replay(path);
  EXPECT_EQ(r.records.size(), 3u);
  ASSERT_EQ(r.report.warnings.size(), 1u);
  EXPECT_NE(r.report.warnings[0].find("torn tail"), std::string::npos);
  EXPECT_EQ(fs::file_size(path), off[3]);
}

TEST(WalTest, BadChecksumInFinalRecordIsTornTail) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  const std::vector<size_t> off = WriteFour(path);
  std::string bytes = ReadAll(path);
  bytes[off[4] - 1] ^= 0x40;
  WriteAll(path, bytes);
  Replayed r = Replay(path);
  EXPECT_EQ(Seqs(r), (std::vector<uint64_t>{1, 2, 3}));
  ASSERT_EQ(r.report.warnings.size(), 1u);
  EXPECT_NE(r.report.warnings[0].find("checksum mismatch"), std::string::npos);
  EXPECT_EQ(fs::file_size(path), off[3]);
}

TEST(WalTest, NoTruncationWhenAskedNotTo) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  const std::vector<size_t> off = WriteFour(path);
  fs::resize_file(path, off[3] + 10);
  Replayed r = Replay(path, /*truncate=*/false);
  EXPECT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.report.truncated_bytes, 10u);
  EXPECT_EQ(fs::file_size(path), off[3] + 10);
}

TEST(WalTest, CorruptPayloadInTheMiddleIsSkippedAndLaterRecordsKept) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  const std::vector<size_t> off = WriteFour(path);
  std::string bytes = ReadAll(path);
  bytes[off[1] + kWalHeaderBytes + 20] ^= 0x01;  // one bit of record 2's body
  WriteAll(path, bytes);
  Replayed r = Replay(path);
  EXPECT_EQ(Seqs(r), (std::vector<uint64_t>{1, 3, 4}));
  ASSERT_EQ(r.report.warnings.size(), 1u);
  EXPECT_NE(r.report.warnings[0].find("corrupt record at offset " + std::to_string(off[1])),
            std::string::npos)
      << r.report.warnings[0];
  EXPECT_EQ(r.report.corrupt_records, 1u);
  EXPECT_EQ(r.report.skipped_bytes, off[2] - off[1]);
  EXPECT_EQ(fs::file_size(path), off[4]);  // nothing truncated
}

TEST(WalTest, CorruptLengthInTheMiddleResyncsOnMagic) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  const std::vector<size_t> off = WriteFour(path);
  std::string bytes = ReadAll(path);
  bytes[off[1] + 4] = '\x7F';  // record 2's length now points into nowhere
  bytes[off[1] + 5] = '\x33';
  WriteAll(path, bytes);
  Replayed r = Replay(path);
  EXPECT_EQ(Seqs(r), (std::vector<uint64_t>{1, 3, 4}));
  ASSERT_EQ(r.report.warnings.size(), 1u);
  EXPECT_NE(r.report.warnings[0].find("offset " + std::to_string(off[1])), std::string::npos);
  EXPECT_NE(r.report.warnings[0].find("resumed at offset " + std::to_string(off[2])),
            std::string::npos)
      << r.report.warnings[0];
}

TEST(WalTest, ZeroedRecordsInTheMiddleAreSkipped) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  const std::vector<size_t> off = WriteFour(path);
  std::string bytes = ReadAll(path);
  std::memset(&bytes[off[1]], 0, off[3] - off[1]);  // records 2 and 3 wiped, 4 intact
  WriteAll(path, bytes);
  Replayed r = Replay(path);
  EXPECT_EQ(Seqs(r), (std::vector<uint64_t>{1, 4}));
  EXPECT_EQ(r.report.warnings.size(), 1u);
  EXPECT_EQ(r.report.skipped_bytes, off[3] - off[1]);
}

TEST(WalTest, AnySingleByteDamageCostsAtMostTheDamagedRecord) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  std::string pristine;
  std::vector<size_t> starts;
  constexpr int kRecords = 12;
  for (int i = 1; i <= kRecords; ++i) {
    starts.push_back(pristine.size());
    const WalEntry entry = i % 3 == 0   ? WalEntry(DeleteFaceRecord{i})
                           : i % 5 == 0 ? WalEntry(DeletePersonRecord{"p" + std::to_string(i)})
                                        : Enroll(i, "p" + std::to_string(i), 4 + i);
    pristine += EncodeWalRecord(static_cast<uint64_t>(i), entry);
  }
  starts.push_back(pristine.size());
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 400; ++trial) {
    std::string bytes = pristine;
    const size_t at = rng() % bytes.size();
    bytes[at] = static_cast<char>(bytes[at] ^ (1 + rng() % 255));
    WriteAll(path, bytes);
    const size_t damaged =
        static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), at) - starts.begin());
    Replayed r = Replay(path);
    std::vector<uint64_t> expected;
    for (uint64_t seq = 1; seq <= kRecords; ++seq) {
      if (seq != damaged) expected.push_back(seq);
    }
    ASSERT_EQ(Seqs(r), expected) << "byte " << at << " (record " << damaged << ")";
    ASSERT_EQ(r.report.warnings.size(), 1u);
  }
}

TEST(WalTest, CallbackErrorStopsReplay) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  WriteFour(path);
  int seen = 0;
  StatusOr<WalReplayReport> report = ReplayWal(path, {}, [&](WalRecord&&) {
    return ++seen == 2 ? FailedPrecondition("stop here") : Status::Ok();
  });
  EXPECT_EQ(report.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(seen, 2);
}

TEST(WalTest, WriterNumbersRecordsAndContinuesAfterReopen) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  {
    StatusOr<std::unique_ptr<WalWriter>> wal = WalWriter::Open(path, 1);
    ASSERT_TRUE(wal.ok()) << wal.status().ToString();
    StatusOr<uint64_t> last = (*wal)->Append({Enroll(1, "a"), Enroll(2, "a")});
    ASSERT_TRUE(last.ok());
    EXPECT_EQ(*last, 2u);
    EXPECT_EQ((*wal)->durable_seq(), 2u);
    EXPECT_EQ((*wal)->size_bytes(), fs::file_size(path));
    EXPECT_EQ((*wal)->Append({DeleteFaceRecord{2}}).value(), 3u);
    EXPECT_EQ((*wal)->WaitDurable(9).code(), StatusCode::kInvalidArgument);
  }
  {
    auto wal = WalWriter::Open(path, 4);
    ASSERT_TRUE(wal.ok());
    EXPECT_EQ((*wal)->Append({DeletePersonRecord{"a"}}).value(), 4u);
  }
  EXPECT_EQ(Seqs(Replay(path)), (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST(WalTest, OversizedEntryIsRejectedBeforeQueueing) {
  testing::TempDir dir;
  auto wal = WalWriter::Open(dir.str("wal.log"), 1);
  ASSERT_TRUE(wal.ok());
  WalEntry huge = Enroll(1, "a", 300000);
  EXPECT_EQ((*wal)->Append({huge}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*wal)->last_seq(), 0u);
  EXPECT_EQ((*wal)->Append({DeletePersonRecord{std::string(70000, 'x')}}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(WalTest, GroupCommitSharesFsyncsAcrossThreads) {
  testing::TempDir dir;
  const std::string path = dir.str("wal.log");
  auto wal = WalWriter::Open(path, 1);
  ASSERT_TRUE(wal.ok());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::atomic<int> ready{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        if (!(*wal)->Append({Enroll(t * 1000 + i, "p" + std::to_string(t))}).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  const uint64_t appends = kThreads * kPerThread;
  EXPECT_EQ((*wal)->record_count(), appends);
  EXPECT_LT((*wal)->sync_count(), appends) << "no fsync was shared";
  std::cout << "group commit: " << appends << " appends, " << (*wal)->sync_count()
            << " fdatasyncs\n";
  Replayed r = Replay(path);
  ASSERT_EQ(r.records.size(), appends);
  // Sequence numbers are contiguous and in file order; every thread's records are there.
  std::set<int64_t> ids;
  for (size_t i = 0; i < r.records.size(); ++i) {
    EXPECT_EQ(r.records[i].seq, i + 1);
    ids.insert(std::get<EnrollFaceRecord>(r.records[i].entry).face.face_id);
  }
  EXPECT_EQ(ids.size(), appends);
}

TEST(WalTest, RotateNeedsQuiescenceAndKeepsNumbering) {
  testing::TempDir dir;
  auto wal = WalWriter::Open(dir.str("wal-1.log"), 1);
  ASSERT_TRUE(wal.ok());
  ASSERT_TRUE((*wal)->Append({Enroll(1, "a")}).ok());
  ASSERT_TRUE((*wal)->Enqueue({Enroll(2, "a")}).ok());
  EXPECT_EQ((*wal)->Rotate(dir.str("wal-2.log")).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*wal)->WaitDurable(2).ok());
  ASSERT_TRUE((*wal)->Rotate(dir.str("wal-2.log")).ok());
  EXPECT_EQ((*wal)->size_bytes(), 0u);
  EXPECT_EQ((*wal)->Append({Enroll(3, "a")}).value(), 3u);
  EXPECT_EQ(Seqs(Replay(dir.str("wal-1.log"))), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(Seqs(Replay(dir.str("wal-2.log"))), (std::vector<uint64_t>{3}));
  // The target must be new.
  EXPECT_FALSE((*wal)->Rotate(dir.str("wal-1.log")).ok());
}

}  // namespace
}  // namespace dtrain::embed
