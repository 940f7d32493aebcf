#include "workers/embedding_store/storage/snapshot.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <utility>

#include "runtime/common/atomic_file.h"
#include "workers/embedding_store/storage/coding.h"
#include "workers/embedding_store/storage/crc32c.h"

namespace dtrain::embed {
namespace {

namespace fs = std::filesystem;
using coding::PutFixed;

constexpr char kMagic[8] = {'D', 'T', 'E', 'M', 'B', 'S', 'N', 'P'};
constexpr size_t kHeaderCrcOffset = kSnapshotHeaderBytes - 4;
constexpr size_t kFlushBytes = size_t{1} << 20;

std::string EncodeHeader(const SnapshotInfo& info, uint64_t body_bytes, uint32_t body_crc) {
  std::string h(kMagic, sizeof(kMagic));
  PutFixed<uint32_t>(&h, kSnapshotVersion);
  PutFixed<uint32_t>(&h, info.dim);
  PutFixed<uint64_t>(&h, info.face_count);
  PutFixed<int64_t>(&h, info.next_face_id);
  PutFixed<uint64_t>(&h, info.last_seq);
  PutFixed<uint64_t>(&h, info.wal_generation);
  PutFixed<int64_t>(&h, info.created_ms);
  PutFixed<uint64_t>(&h, body_bytes);
  PutFixed<uint32_t>(&h, body_crc);
  PutFixed<uint32_t>(&h, Crc32c(h.data(), h.size()));
  return h;
}

}  // namespace

SnapshotWriter::SnapshotWriter(std::string dir, uint32_t dim, ScopedFd fd)
    : dir_(std::move(dir)),
      temp_path_((fs::path(dir_) / kSnapshotTempFileName).string()),
      dim_(dim),
      fd_(std::move(fd)) {
  // Room for the header, written last once the body's size and checksum are known.
  buffer_.assign(kSnapshotHeaderBytes, '\0');
}

SnapshotWriter::~SnapshotWriter() {
  if (!committed_) {
    fd_.reset();
    ::unlink(temp_path_.c_str());
  }
}

StatusOr<std::unique_ptr<SnapshotWriter>> SnapshotWriter::Create(const std::string& dir,
                                                                 uint32_t dim) {
  const std::string temp = (fs::path(dir) / kSnapshotTempFileName).string();
  DTRAIN_ASSIGN_OR_RETURN(ScopedFd fd, OpenFile(temp, O_WRONLY | O_CREAT | O_TRUNC, kDataFileMode));
  // A temporary file left by a crash keeps its mode through O_CREAT: set it.
  if (::fchmod(fd.get(), kDataFileMode) != 0) {
    return ErrnoStatus("cannot set the mode of", temp, errno);
  }
  return std::unique_ptr<SnapshotWriter>(new SnapshotWriter(dir, dim, std::move(fd)));
}

Status SnapshotWriter::FlushBuffer() {
  DTRAIN_RETURN_IF_ERROR(WriteFully(fd_.get(), buffer_.data(), buffer_.size(), temp_path_));
  buffer_.clear();
  return Status::Ok();
}

Status SnapshotWriter::Add(const Face& face) {
  if (face.vector.size() != dim_) {
    return InvalidArgument("snapshot: face " + std::to_string(face.face_id) + " has " +
                           std::to_string(face.vector.size()) + " floats, expected " +
                           std::to_string(dim_));
  }
  if (face_count_ > 0 && face.face_id <= last_face_id_) {
    return InvalidArgument("snapshot: faces must be added in ascending face_id order");
  }
  if (face.person_id.size() > 0xFFFF || face.metadata.source.size() > 0xFFFF) {
    return InvalidArgument("snapshot: string field longer than 65535 bytes");
  }
  const size_t start = buffer_.size();
  PutFixed<int64_t>(&buffer_, face.face_id);
  PutFixed<int64_t>(&buffer_, face.metadata.enrolled_at_ms);
  coding::PutString16(&buffer_, face.person_id);
  coding::PutString16(&buffer_, face.metadata.source);
  coding::PutFloats(&buffer_, face.vector);
  const size_t n = buffer_.size() - start;
  body_crc_ = Crc32cExtend(body_crc_, buffer_.data() + start, n);
  body_bytes_ += n;
  ++face_count_;
  last_face_id_ = face.face_id;
  if (buffer_.size() >= kFlushBytes) return FlushBuffer();
  return Status::Ok();
}

Status SnapshotWriter::AddRequest(const RememberedEnroll& request) {
  if (request.request_id.size() > 0xFFFF || request.person_id.size() > 0xFFFF ||
      request.face_ids.size() > 0xFFFFFFFFu) {
    return InvalidArgument("snapshot: request id entry too large");
  }
  coding::PutString16(&requests_, request.request_id);
  coding::PutString16(&requests_, request.person_id);
  PutFixed<uint32_t>(&requests_, static_cast<uint32_t>(request.face_ids.size()));
  for (int64_t id : request.face_ids) PutFixed<int64_t>(&requests_, id);
  ++request_count_;
  return Status::Ok();
}

StatusOr<uint64_t> SnapshotWriter::Commit(SnapshotInfo info) {
  if (committed_) return FailedPrecondition("snapshot already committed");
  info.dim = dim_;
  info.face_count = face_count_;
  {
    std::string tail;
    PutFixed<uint64_t>(&tail, request_count_);
    tail += requests_;
    requests_.clear();
    body_crc_ = Crc32cExtend(body_crc_, tail.data(), tail.size());
    body_bytes_ += tail.size();
    buffer_ += tail;
  }
  DTRAIN_RETURN_IF_ERROR(FlushBuffer());
  const std::string header = EncodeHeader(info, body_bytes_, body_crc_);
  DTRAIN_RETURN_IF_ERROR(PwriteFully(fd_.get(), header.data(), header.size(), 0, temp_path_));
  fd_.reset();
  // CommitTempFile fsyncs, renames and fsyncs the directory; it removes the temporary file
  // itself when that fails, so the destructor has nothing left to clean up either way.
  committed_ = true;
  DTRAIN_RETURN_IF_ERROR(CommitTempFile(temp_path_, (fs::path(dir_) / kSnapshotFileName).string()));
  return kSnapshotHeaderBytes + body_bytes_;
}

StatusOr<SnapshotInfo> ReadSnapshot(const std::string& path, uint32_t expected_dim,
                                    const std::function<Status(Face&&)>& fn,
                                    const std::function<Status(RememberedEnroll&&)>& on_request) {
  DTRAIN_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const char* data = file.data();
  const size_t size = file.size();
  auto loss = [&path](const std::string& what) {
    return DataLoss("snapshot " + path + " is damaged: " + what);
  };
  if (size < kSnapshotHeaderBytes) {
    return loss("only " + std::to_string(size) + " bytes, the header alone needs " +
                std::to_string(kSnapshotHeaderBytes));
  }
  if (std::memcmp(data, kMagic, sizeof(kMagic)) != 0) return loss("bad magic");
  if (Crc32c(data, kHeaderCrcOffset) != coding::LoadFixed<uint32_t>(data + kHeaderCrcOffset)) {
    return loss("header checksum mismatch");
  }
  coding::Decoder header(data + sizeof(kMagic), kSnapshotHeaderBytes - sizeof(kMagic));
  uint32_t version = 0;
  uint64_t body_bytes = 0;
  uint32_t body_crc = 0;
  SnapshotInfo info;
  header.Get(&version);
  header.Get(&info.dim);
  header.Get(&info.face_count);
  header.Get(&info.next_face_id);
  header.Get(&info.last_seq);
  header.Get(&info.wal_generation);
  header.Get(&info.created_ms);
  header.Get(&body_bytes);
  header.Get(&body_crc);
  if (version != kSnapshotVersion && version != kSnapshotVersionWithoutRequests) {
    return FailedPrecondition("snapshot " + path + " has format version " +
                              std::to_string(version) + "; this build reads version " +
                              std::to_string(kSnapshotVersion));
  }
  if (body_bytes != size - kSnapshotHeaderBytes) {
    return loss("body is " + std::to_string(size - kSnapshotHeaderBytes) +
                " bytes but the header says " + std::to_string(body_bytes));
  }
  const char* body = data + kSnapshotHeaderBytes;
  if (Crc32c(body, body_bytes) != body_crc) return loss("body checksum mismatch");
  if (info.dim != expected_dim) {
    return FailedPrecondition("snapshot " + path + " holds vectors of dim " +
                              std::to_string(info.dim) + ", but the database was opened with dim " +
                              std::to_string(expected_dim));
  }
  coding::Decoder d(body, body_bytes);
  for (uint64_t i = 0; i < info.face_count; ++i) {
    Face face;
    if (!d.Get(&face.face_id) || !d.Get(&face.metadata.enrolled_at_ms) ||
        !d.GetString16(&face.person_id) || !d.GetString16(&face.metadata.source) ||
        !d.GetFloats(info.dim, &face.vector)) {
      return loss("face entry " + std::to_string(i) + " of " + std::to_string(info.face_count) +
                  " is cut short");
    }
    DTRAIN_RETURN_IF_ERROR(fn(std::move(face)));
  }
  if (version >= kSnapshotVersion) {
    uint64_t requests = 0;
    if (!d.Get(&requests)) return loss("the request id count is cut short");
    for (uint64_t i = 0; i < requests; ++i) {
      RememberedEnroll request;
      uint32_t n = 0;
      if (!d.GetString16(&request.request_id) || !d.GetString16(&request.person_id) || !d.Get(&n) ||
          n > d.remaining() / sizeof(int64_t)) {
        return loss("request id entry " + std::to_string(i) + " of " + std::to_string(requests) +
                    " is cut short");
      }
      request.face_ids.resize(n);
      for (uint32_t j = 0; j < n; ++j) d.Get(&request.face_ids[j]);
      if (on_request) DTRAIN_RETURN_IF_ERROR(on_request(std::move(request)));
    }
  }
  if (d.remaining() != 0) {
    return loss(std::to_string(d.remaining()) + " unexpected bytes after the last entry");
  }
  return info;
}

}  // namespace dtrain::embed
