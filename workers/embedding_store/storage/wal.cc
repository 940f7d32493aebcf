#include "workers/embedding_store/storage/wal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "runtime/common/atomic_file.h"
#include "workers/embedding_store/storage/coding.h"
#include "workers/embedding_store/storage/crc32c.h"

namespace dtrain::embed {
namespace {

namespace fs = std::filesystem;
using coding::Decoder;
using coding::PutFixed;
using coding::PutString16;

constexpr size_t kMaxString = std::numeric_limits<uint16_t>::max();

std::string DirOf(const std::string& path) {
  std::string dir = fs::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

WalRecordType TypeOf(const WalEntry& entry) {
  if (std::holds_alternative<EnrollFaceRecord>(entry)) return WalRecordType::kEnrollFace;
  if (std::holds_alternative<DeleteFaceRecord>(entry)) return WalRecordType::kDeleteFace;
  if (std::holds_alternative<EnrollRequestRecord>(entry)) return WalRecordType::kEnrollRequest;
  return WalRecordType::kDeletePerson;
}

void EncodeBody(uint64_t seq, const WalEntry& entry, std::string* body) {
  PutFixed<uint64_t>(body, seq);
  if (const auto* e = std::get_if<EnrollFaceRecord>(&entry)) {
    const Face& f = e->face;
    PutFixed<int64_t>(body, f.face_id);
    PutFixed<int64_t>(body, f.metadata.enrolled_at_ms);
    PutString16(body, f.person_id);
    PutString16(body, f.metadata.source);
    PutFixed<uint32_t>(body, static_cast<uint32_t>(f.vector.size()));
    coding::PutFloats(body, f.vector);
  } else if (const auto* d = std::get_if<DeleteFaceRecord>(&entry)) {
    PutFixed<int64_t>(body, d->face_id);
  } else if (const auto* r = std::get_if<EnrollRequestRecord>(&entry)) {
    const Face& first = r->faces.front();
    PutString16(body, r->request_id);
    PutString16(body, first.person_id);
    PutString16(body, first.metadata.source);
    PutFixed<int64_t>(body, first.metadata.enrolled_at_ms);
    PutFixed<uint32_t>(body, static_cast<uint32_t>(r->faces.size()));
    PutFixed<uint32_t>(body, static_cast<uint32_t>(first.vector.size()));
    for (const Face& f : r->faces) {
      PutFixed<int64_t>(body, f.face_id);
      coding::PutFloats(body, f.vector);
    }
  } else {
    PutString16(body, std::get<DeletePersonRecord>(entry).person_id);
  }
}

Status CheckEncodable(const WalEntry& entry) {
  if (const auto* e = std::get_if<EnrollFaceRecord>(&entry)) {
    const Face& f = e->face;
    if (f.person_id.size() > kMaxString || f.metadata.source.size() > kMaxString) {
      return InvalidArgument("EnrollFace record: person_id or source longer than 65535 bytes");
    }
    if (f.vector.size() * sizeof(float) + 2 * kMaxString + 64 > kMaxWalBodyBytes) {
      return InvalidArgument("EnrollFace record: vector of " + std::to_string(f.vector.size()) +
                             " floats exceeds the WAL record limit");
    }
  } else if (const auto* p = std::get_if<DeletePersonRecord>(&entry)) {
    if (p->person_id.size() > kMaxString) {
      return InvalidArgument("DeletePerson record: person_id longer than 65535 bytes");
    }
  } else if (const auto* r = std::get_if<EnrollRequestRecord>(&entry)) {
    if (r->faces.empty()) return InvalidArgument("EnrollRequest record: no faces");
    const Face& first = r->faces.front();
    if (r->request_id.size() > kMaxString || first.person_id.size() > kMaxString ||
        first.metadata.source.size() > kMaxString) {
      return InvalidArgument("EnrollRequest record: a string longer than 65535 bytes");
    }
    for (const Face& f : r->faces) {
      if (f.person_id != first.person_id || f.vector.size() != first.vector.size() ||
          f.metadata.source != first.metadata.source ||
          f.metadata.enrolled_at_ms != first.metadata.enrolled_at_ms) {
        return InvalidArgument("EnrollRequest record: faces of one person, dim and metadata");
      }
    }
    const uint64_t bytes =
        3 * uint64_t{kMaxString} + 64 + r->faces.size() * (8 + first.vector.size() * sizeof(float));
    if (bytes > kMaxWalBodyBytes) {
      return InvalidArgument("EnrollRequest record: " + std::to_string(r->faces.size()) +
                             " faces of " + std::to_string(first.vector.size()) +
                             " floats exceed the WAL record limit of " +
                             std::to_string(kMaxWalBodyBytes) + " bytes; enroll fewer at once");
    }
  }
  return Status::Ok();
}

// Decodes a body whose CRC already checked out; false if it does not parse exactly.
bool DecodeBody(uint8_t type, const char* data, size_t size, WalRecord* record) {
  Decoder d(data, size);
  if (!d.Get(&record->seq)) return false;
  switch (static_cast<WalRecordType>(type)) {
    case WalRecordType::kEnrollFace: {
      EnrollFaceRecord e;
      Face& f = e.face;
      uint32_t dim;
      if (!d.Get(&f.face_id) || !d.Get(&f.metadata.enrolled_at_ms) ||
          !d.GetString16(&f.person_id) || !d.GetString16(&f.metadata.source) || !d.Get(&dim) ||
          !d.GetFloats(dim, &f.vector)) {
        return false;
      }
      record->entry = std::move(e);
      break;
    }
    case WalRecordType::kDeleteFace: {
      DeleteFaceRecord e;
      if (!d.Get(&e.face_id)) return false;
      record->entry = e;
      break;
    }
    case WalRecordType::kDeletePerson: {
      DeletePersonRecord e;
      if (!d.GetString16(&e.person_id)) return false;
      record->entry = std::move(e);
      break;
    }
    case WalRecordType::kEnrollRequest: {
      EnrollRequestRecord e;
      Face shared;
      uint32_t count;
      uint32_t dim;
      if (!d.GetString16(&e.request_id) || !d.GetString16(&shared.person_id) ||
          !d.GetString16(&shared.metadata.source) || !d.Get(&shared.metadata.enrolled_at_ms) ||
          !d.Get(&count) || !d.Get(&dim) || count == 0 ||
          count > d.remaining() / (8 + size_t{dim} * sizeof(float))) {
        return false;
      }
      e.faces.reserve(count);
      for (uint32_t i = 0; i < count; ++i) {
        Face f;
        if (!d.Get(&f.face_id) || !d.GetFloats(dim, &f.vector)) return false;
        f.person_id = shared.person_id;
        f.metadata = shared.metadata;
        e.faces.push_back(std::move(f));
      }
      record->entry = std::move(e);
      break;
    }
    default:
      return false;
  }
  return d.remaining() == 0;
}

// Parses the record starting at `offset`. On success fills `record` and `length` (framing
// included); otherwise says why in `reason`.
bool ParseAt(const char* data, size_t size, size_t offset, WalRecord* record, size_t* length,
             std::string* reason) {
  const size_t left = size - offset;
  if (left < kWalHeaderBytes) {
    *reason = "header cut short (" + std::to_string(left) + " bytes left)";
    return false;
  }
  const char* p = data + offset;
  if (coding::LoadFixed<uint32_t>(p) != kWalRecordMagic) {
    *reason = "bad magic";
    return false;
  }
  const uint32_t body_len = coding::LoadFixed<uint32_t>(p + 4);
  if (body_len > kMaxWalBodyBytes) {
    *reason = "length " + std::to_string(body_len) + " over the limit";
    return false;
  }
  if (left - kWalHeaderBytes < body_len) {
    *reason = "record of " + std::to_string(body_len) + " bytes cut short at end of file";
    return false;
  }
  const uint32_t stored_crc = coding::LoadFixed<uint32_t>(p + 8);
  const uint8_t type = static_cast<uint8_t>(p[12]);
  // The CRC covers type + body, which are contiguous.
  if (Crc32c(p + 12, 1 + size_t{body_len}) != stored_crc) {
    *reason = "checksum mismatch";
    return false;
  }
  if (!DecodeBody(type, p + kWalHeaderBytes, body_len, record)) {
    *reason = "undecodable body of type " + std::to_string(type);
    return false;
  }
  *length = kWalHeaderBytes + body_len;
  return true;
}

// The offset of the first valid record after a bad one at `bad`, or `size` if there is none.
size_t FindNextRecord(const char* data, size_t size, size_t bad) {
  WalRecord scratch;
  size_t length;
  std::string reason;
  // Damage confined to the payload leaves the length intact: trust it first.
  if (size - bad >= kWalHeaderBytes) {
    const uint64_t next =
        bad + kWalHeaderBytes + uint64_t{coding::LoadFixed<uint32_t>(data + bad + 4)};
    if (next < size && ParseAt(data, size, next, &scratch, &length, &reason)) return next;
  }
  char magic[4];
  std::memcpy(magic, &kWalRecordMagic, 4);
  for (size_t at = bad + 1; at + kWalHeaderBytes <= size; ++at) {
    const void* hit = std::memchr(data + at, magic[0], size - at);
    if (hit == nullptr) break;
    at = static_cast<size_t>(static_cast<const char*>(hit) - data);
    if (at + kWalHeaderBytes > size) break;
    if (std::memcmp(data + at, magic, 4) == 0 &&
        ParseAt(data, size, at, &scratch, &length, &reason)) {
      return at;
    }
  }
  return size;
}

}  // namespace

std::string EncodeWalRecord(uint64_t seq, const WalEntry& entry) {
  std::string body;
  EncodeBody(seq, entry, &body);
  const uint8_t type = static_cast<uint8_t>(TypeOf(entry));
  std::string out;
  out.reserve(kWalHeaderBytes + body.size());
  PutFixed<uint32_t>(&out, kWalRecordMagic);
  PutFixed<uint32_t>(&out, static_cast<uint32_t>(body.size()));
  PutFixed<uint32_t>(&out, Crc32cExtend(Crc32c(&type, 1), body.data(), body.size()));
  PutFixed<uint8_t>(&out, type);
  out += body;
  return out;
}

StatusOr<WalReplayReport> ReplayWal(const std::string& path, const WalReplayOptions& options,
                                    const std::function<Status(WalRecord&&)>& fn) {
  WalReplayReport report;
  const std::string name = fs::path(path).filename().string();
  {
    DTRAIN_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
    const char* data = file.data();
    const size_t size = file.size();
    size_t offset = 0;
    while (offset < size) {
      WalRecord record;
      size_t length = 0;
      std::string reason;
      if (ParseAt(data, size, offset, &record, &length, &reason)) {
        report.last_seq = record.seq;
        ++report.records;
        DTRAIN_RETURN_IF_ERROR(fn(std::move(record)));
        offset += length;
        continue;
      }
      const size_t next = FindNextRecord(data, size, offset);
      if (next == size) {
        report.truncated_bytes = size - offset;
        report.warnings.push_back(name + ": torn tail at offset " + std::to_string(offset) + " (" +
                                  reason +
                                  "): " + (options.truncate_torn_tail ? "truncated " : "ignored ") +
                                  std::to_string(size - offset) + " bytes");
        break;
      }
      ++report.corrupt_records;
      report.skipped_bytes += next - offset;
      report.warnings.push_back(name + ": corrupt record at offset " + std::to_string(offset) +
                                " (" + reason + "): skipped " + std::to_string(next - offset) +
                                " bytes, resumed at offset " + std::to_string(next));
      offset = next;
    }
    report.end_offset = offset;
  }  // unmapped before truncating: touching a mapping past EOF would raise SIGBUS
  if (report.truncated_bytes > 0 && options.truncate_torn_tail) {
    DTRAIN_RETURN_IF_ERROR(TruncateFile(path, report.end_offset));
  }
  return report;
}

WalWriter::WalWriter(std::string path, ScopedFd fd, uint64_t size, uint64_t next_seq)
    : path_(std::move(path)),
      fd_(std::move(fd)),
      last_seq_(next_seq - 1),
      durable_seq_(next_seq - 1),
      size_bytes_(size) {}

StatusOr<std::unique_ptr<WalWriter>> WalWriter::Open(const std::string& path, uint64_t next_seq) {
  if (next_seq == 0) return InvalidArgument("WAL sequence numbers start at 1");
  std::error_code ec;
  const bool existed = fs::exists(path, ec);
  DTRAIN_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(path, O_WRONLY | O_CREAT | O_APPEND));
  if (!existed) {
    DTRAIN_RETURN_IF_ERROR(SyncDirectory(DirOf(path)));
  }
  DTRAIN_ASSIGN_OR_RETURN(uint64_t size, FileSize(path));
  return std::unique_ptr<WalWriter>(new WalWriter(path, std::move(fd), size, next_seq));
}

StatusOr<uint64_t> WalWriter::Enqueue(const std::vector<WalEntry>& entries) {
  for (const WalEntry& entry : entries) DTRAIN_RETURN_IF_ERROR(CheckEncodable(entry));
  std::lock_guard<std::mutex> lock(mu_);
  if (!error_.ok()) return error_;
  for (const WalEntry& entry : entries) queued_ += EncodeWalRecord(++last_seq_, entry);
  return last_seq_;
}

Status WalWriter::WaitDurable(uint64_t seq) {
  std::unique_lock<std::mutex> lock(mu_);
  if (seq > last_seq_) {
    return InvalidArgument("WaitDurable(" + std::to_string(seq) + "): only " +
                           std::to_string(last_seq_) + " records were enqueued");
  }
  while (true) {
    if (durable_seq_ >= seq) return Status::Ok();
    if (!error_.ok()) return error_;
    if (!flushing_) break;
    flushed_.wait(lock);
  }
  // Leader: flush everything queued so far, ours included, with no lock held.
  flushing_ = true;
  std::string batch;
  batch.swap(queued_);
  const uint64_t batch_last = last_seq_;
  const int fd = fd_.get();
  const std::string path = path_;
  const uint64_t batch_records = batch_last - durable_seq_;
  lock.unlock();

  Status status = WriteFully(fd, batch.data(), batch.size(), path);
  if (status.ok()) {
    status = SyncData(fd, path);
    sync_count_.fetch_add(1);
  }

  lock.lock();
  flushing_ = false;
  if (status.ok()) {
    durable_seq_ = batch_last;
    size_bytes_.fetch_add(batch.size());
    record_count_.fetch_add(batch_records);
  } else {
    error_ = status.WithContext("write-ahead log failed, no further writes are accepted");
  }
  flushed_.notify_all();
  return error_.ok() ? Status::Ok() : error_;
}

StatusOr<uint64_t> WalWriter::Append(const std::vector<WalEntry>& entries) {
  DTRAIN_ASSIGN_OR_RETURN(uint64_t last, Enqueue(entries));
  DTRAIN_RETURN_IF_ERROR(WaitDurable(last));
  return last;
}

Status WalWriter::Rotate(const std::string& new_path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!error_.ok()) return error_;
  if (flushing_ || durable_seq_ != last_seq_) {
    return FailedPrecondition("WAL rotation with records still in flight");
  }
  DTRAIN_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(new_path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND));
  if (Status synced = SyncDirectory(DirOf(new_path)); !synced.ok()) {
    ::unlink(new_path.c_str());  // so that a retry can create it again
    return synced;
  }
  fd_ = std::move(fd);
  path_ = new_path;
  size_bytes_.store(0);
  return Status::Ok();
}

std::string WalWriter::path() const {
  std::lock_guard<std::mutex> lock(mu_);
  return path_;
}

uint64_t WalWriter::last_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_seq_;
}

uint64_t WalWriter::durable_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return durable_seq_;
}

}  // namespace dtrain::embed
