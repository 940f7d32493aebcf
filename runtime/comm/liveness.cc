#include "runtime/comm/liveness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

namespace dtrain::comm {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kMinPeriod(10);
// Silence shorter than this is never judged: on a loaded machine a heartbeat thread can lag by a
// few hundred milliseconds, and a shorter limit (tests use collective timeouts of 0.3 s) would
// blame healthy ranks. Collective deadlines still apply as given.
constexpr std::chrono::milliseconds kMinSilenceLimit(1000);
constexpr std::chrono::milliseconds kMaxPeriod(1000);
// How long a spoke tries one of the hub's addresses before the next.
constexpr std::chrono::milliseconds kConnectTimeout(2000);
constexpr uint32_t kMaxFrameBytes = 1 << 20;
// A connection that closed without a goodbye means the process died. Its launcher (mpirun)
// reports a death with the signal and host; failing at once would race that report with an
// MPI_Abort that hides it. So the rank is blamed only after this grace (or half the timeout).
constexpr std::chrono::milliseconds kClosedGrace(2000);
constexpr char kEndpointMagic[] = "dtrain-liveness-1";

enum FrameType : uint8_t { kHello = 1, kBeat = 2, kBye = 3, kTable = 4 };

int64_t Ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::string Seconds(int64_t ms) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", ms / 1000.0);
  return text;
}

// ----------------------------------------------------------------------------- wire format
// Big-endian integers; strings are a length then bytes.

void PutInt(std::string* out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}
void PutString(std::string* out, const std::string& s) {
  PutInt(out, s.size(), 4);
  out->append(s);
}

// Reads from `data`, which must outlive it.
class Reader {
 public:
  explicit Reader(const std::string& data) : data_(data) {}
  uint64_t Int(int bytes) {
    if (!Has(bytes)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(data_[pos_++]);
    return v;
  }
  std::string String() {
    const uint64_t n = Int(4);
    if (!Has(n)) return "";
    std::string s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string Bytes(size_t n) {
    if (!Has(n)) return "";
    std::string s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  bool Has(uint64_t n) {
    if (!ok_ || data_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  const std::string& data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

void AppendFrame(std::string* out, FrameType type, const std::string& payload) {
  PutInt(out, type, 1);
  PutInt(out, payload.size(), 4);
  out->append(payload);
}

std::string EncodeTable(const std::vector<PeerView>& table, int failed_rank,
                        const std::string& failure) {
  std::string p;
  PutInt(&p, static_cast<uint32_t>(failed_rank), 4);
  PutString(&p, failure);
  PutInt(&p, table.size(), 4);
  for (const PeerView& v : table) {
    PutInt(&p, static_cast<uint8_t>(v.state), 1);
    PutInt(&p, v.issued, 8);
    PutInt(&p, v.completed, 8);
    PutInt(&p, static_cast<uint64_t>(v.silent_ms), 8);
    PutInt(&p, static_cast<uint64_t>(v.waiting_ms), 8);
    PutString(&p, v.host);
  }
  return p;
}

bool DecodeTable(const std::string& payload, size_t size, std::vector<PeerView>* table,
                 int* failed_rank, std::string* failure) {
  Reader r(payload);
  *failed_rank = static_cast<int32_t>(r.Int(4));
  *failure = r.String();
  if (r.Int(4) != size) return false;
  table->assign(size, PeerView());
  for (PeerView& v : *table) {
    const uint64_t state = r.Int(1);
    if (state > static_cast<uint64_t>(PeerState::kDeparted)) return false;
    v.state = static_cast<PeerState>(state);
    v.issued = r.Int(8);
    v.completed = r.Int(8);
    v.silent_ms = static_cast<int64_t>(r.Int(8));
    v.waiting_ms = static_cast<int64_t>(r.Int(8));
    v.host = r.String();
  }
  return r.ok() && r.at_end();
}

bool SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL, 0);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// Rank 0's IPv4 addresses, the ones other hosts can reach first, loopback last.
std::vector<std::string> LocalAddresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
      if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
      if (!(a->ifa_flags & IFF_UP) || (a->ifa_flags & IFF_LOOPBACK)) continue;
      char text[INET_ADDRSTRLEN];
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
      if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) == nullptr) continue;
      if (std::find(out.begin(), out.end(), text) == out.end()) out.push_back(text);
    }
    ::freeifaddrs(list);
  }
  out.push_back("127.0.0.1");
  return out;
}

std::string ThisHost() {
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "?";
  return name;
}

std::string HostAndPid() { return ThisHost() + " pid " + std::to_string(::getpid()); }

}  // namespace

// ----------------------------------------------------------------------------- judgement

std::string DescribeRank(const std::vector<PeerView>& peers, int rank) {
  std::string s = "rank " + std::to_string(rank);
  if (rank >= 0 && static_cast<size_t>(rank) < peers.size() && !peers[rank].host.empty()) {
    s += " (" + peers[rank].host + ")";
  }
  return s;
}

LivenessFinding AssessPeers(const std::vector<PeerView>& peers, std::chrono::milliseconds timeout) {
  LivenessFinding f;
  const int64_t limit = timeout.count();
  const int64_t half = limit / 2;
  const std::string timeout_text = " (distributed.timeout_s is " + Seconds(limit) + ")";
  // A closed connection is certain; silence is judged by how long, the longest first.
  int longest = -1;
  for (size_t r = 0; r < peers.size(); ++r) {
    const PeerView& p = peers[r];
    const int rank = static_cast<int>(r);
    if (p.state == PeerState::kClosed && f.failed_rank < 0) {
      f.failed_rank = rank;
      f.failure = DescribeRank(peers, rank) +
                  " closed its liveness connection without a goodbye: the process died or its "
                  "host went away";
    }
    if (p.state != PeerState::kAlive && p.state != PeerState::kConnecting) continue;
    if (p.silent_ms >= half) f.suspects.push_back(rank);
    if (p.silent_ms >= limit && (longest < 0 || p.silent_ms > peers[longest].silent_ms)) {
      longest = rank;
    }
  }
  if (f.failed_rank < 0 && longest >= 0) {
    const PeerView& p = peers[longest];
    f.failed_rank = longest;
    f.failure = p.state == PeerState::kConnecting
                    ? DescribeRank(peers, longest) +
                          " never reached rank 0's liveness port within " + Seconds(p.silent_ms) +
                          timeout_text
                    : DescribeRank(peers, longest) + " stopped answering: no heartbeat for " +
                          Seconds(p.silent_ms) + timeout_text +
                          "; the process is stopped or frozen, or its host or network is down";
  }
  if (!f.suspects.empty()) {
    f.warning =
        "no heartbeat for over half of distributed.timeout_s (" + Seconds(limit) + ") from:";
    for (int r : f.suspects) {
      f.warning += " " + DescribeRank(peers, r) + " silent " + Seconds(peers[r].silent_ms) + ";";
    }
    f.warning += " the job fails if it stays silent for " + Seconds(limit);
    return f;
  }
  // Nobody silent: is a rank waiting on a collective that others have not entered?
  int waiter = -1;
  for (size_t r = 0; r < peers.size(); ++r) {
    if (peers[r].waiting_ms >= half &&
        (waiter < 0 || peers[r].waiting_ms > peers[waiter].waiting_ms)) {
      waiter = static_cast<int>(r);
    }
  }
  if (waiter < 0) return f;
  const uint64_t seq = peers[waiter].completed;  // the collective it waits on
  for (size_t r = 0; r < peers.size(); ++r) {
    if (static_cast<int>(r) != waiter && peers[r].issued <= seq) {
      f.suspects.push_back(static_cast<int>(r));
    }
  }
  if (f.suspects.empty()) return f;
  f.warning = DescribeRank(peers, waiter) + " has waited " + Seconds(peers[waiter].waiting_ms) +
              " on collective #" + std::to_string(seq) + ", not yet entered by:";
  for (int r : f.suspects) {
    f.warning +=
        " " + DescribeRank(peers, r) + " (issued " + std::to_string(peers[r].issued) + ");";
  }
  f.warning += " the collective fails after " + Seconds(limit);
  return f;
}

int BlameForDeadline(const std::vector<PeerView>& peers, int rank, uint64_t seq,
                     std::chrono::milliseconds timeout, std::string* why) {
  LivenessFinding f = AssessPeers(peers, timeout);
  if (f.failed_rank >= 0) {
    *why = f.failure;
    return f.failed_rank;
  }
  int silent = -1;
  for (size_t r = 0; r < peers.size(); ++r) {
    if (static_cast<int>(r) == rank || peers[r].state == PeerState::kDeparted) continue;
    if (peers[r].silent_ms >= timeout.count() / 2 &&
        (silent < 0 || peers[r].silent_ms > peers[silent].silent_ms)) {
      silent = static_cast<int>(r);
    }
  }
  if (silent >= 0) {
    *why = DescribeRank(peers, silent) + " stopped answering: no heartbeat for " +
           Seconds(peers[silent].silent_ms);
    return silent;
  }
  for (size_t r = 0; r < peers.size(); ++r) {
    if (static_cast<int>(r) != rank && peers[r].issued <= seq) {
      *why = DescribeRank(peers, static_cast<int>(r)) + " never entered it (it issued " +
             std::to_string(peers[r].issued) + " collectives, this is #" + std::to_string(seq) +
             ")" + (peers[r].state == PeerState::kDeparted ? " and has left" : "");
      return static_cast<int>(r);
    }
  }
  *why = peers.empty() ? "no liveness information"
                       : "every rank entered it: the ranks may have issued different "
                         "collectives, or the transport failed";
  return -1;
}

// ----------------------------------------------------------------------------- endpoint

std::array<char, LivenessEndpoint::kEncodedBytes> LivenessEndpoint::Encode() const {
  std::string s(kEndpointMagic);
  PutInt(&s, port, 2);
  s.append(reinterpret_cast<const char*>(secret.data()), secret.size());
  std::string list;
  size_t count = 0;
  for (const std::string& a : addresses) {
    // Whatever does not fit is left out; loopback is last and always short.
    if (s.size() + 1 + list.size() + 4 + a.size() + 4 + 16 > kEncodedBytes) break;
    PutString(&list, a);
    ++count;
  }
  PutInt(&s, count, 1);
  s += list;
  std::array<char, kEncodedBytes> out{};
  std::copy(s.begin(), s.end(), out.begin());
  return out;
}

StatusOr<LivenessEndpoint> LivenessEndpoint::Decode(const std::array<char, kEncodedBytes>& data) {
  const std::string s(data.begin(), data.end());
  const size_t magic = std::strlen(kEndpointMagic);
  if (s.compare(0, magic, kEndpointMagic) != 0) {
    return DataLoss("liveness endpoint from rank 0 is not in the expected form");
  }
  const std::string body = s.substr(magic);
  Reader r(body);
  LivenessEndpoint e;
  e.port = static_cast<uint16_t>(r.Int(2));
  const std::string secret = r.Bytes(e.secret.size());
  std::copy(secret.begin(), secret.end(), e.secret.begin());
  const uint64_t count = r.Int(1);
  for (uint64_t i = 0; i < count && r.ok(); ++i) e.addresses.push_back(r.String());
  if (!r.ok() || e.port == 0 || e.addresses.empty()) {
    return DataLoss("liveness endpoint from rank 0 is truncated");
  }
  return e;
}

// ----------------------------------------------------------------------------- connection

struct LivenessMonitor::Connection {
  explicit Connection(int fd_in) : fd(fd_in), since(Clock::now()) {}
  ~Connection() {
    if (fd >= 0) ::close(fd);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends what it can without blocking; false once the connection failed.
  bool Flush() {
    while (!out.empty()) {
      const ssize_t n = ::send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        out.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
      }
    }
    return true;
  }
  // Reads what has arrived; false once the peer closed or the connection failed (what arrived
  // before that is still in `in`).
  bool Fill() {
    char buffer[16384];
    for (;;) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n > 0) {
        in.append(buffer, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
  }
  // The next whole frame, if one has arrived; *bad on a frame no dtrain rank sends.
  bool NextFrame(uint8_t* type, std::string* payload, bool* bad) {
    if (in.size() < 5) return false;
    Reader header(in);
    *type = static_cast<uint8_t>(header.Int(1));
    const uint64_t length = header.Int(4);
    if (length > kMaxFrameBytes) {
      *bad = true;
      return false;
    }
    if (in.size() < 5 + length) return false;
    *payload = in.substr(5, length);
    in.erase(0, 5 + length);
    return true;
  }
  void Send(FrameType type, const std::string& payload) { AppendFrame(&out, type, payload); }

  int fd;
  Clock::time_point since;  // accepted at (hub) / connected at (spoke)
  std::string in;
  std::string out;
};

// ----------------------------------------------------------------------------- monitor

LivenessMonitor::LivenessMonitor(int rank, int size, std::chrono::milliseconds timeout)
    : rank_(rank),
      size_(size),
      timeout_(std::max(timeout, kMinSilenceLimit)),
      period_(std::clamp<std::chrono::milliseconds>(timeout_ / 10, kMinPeriod, kMaxPeriod)),
      table_(static_cast<size_t>(size)) {}

StatusOr<std::unique_ptr<LivenessMonitor>> LivenessMonitor::StartHub(
    int size, std::chrono::milliseconds timeout, LivenessEndpoint* endpoint) {
  std::unique_ptr<LivenessMonitor> m(new LivenessMonitor(0, size, timeout));
  if (::getrandom(m->secret_.data(), m->secret_.size(), 0) !=
      static_cast<ssize_t>(m->secret_.size())) {
    return Internal(ErrnoText("liveness: getrandom"));
  }
  m->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (m->listen_fd_ < 0) return Unavailable(ErrnoText("liveness: socket"));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(m->listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(m->listen_fd_, std::max(16, size)) != 0 ||
      ::getsockname(m->listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
      !SetNonBlocking(m->listen_fd_)) {
    return Unavailable(ErrnoText("liveness: cannot listen on a TCP port"));
  }
  if (::pipe2(m->wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Internal(ErrnoText("liveness: pipe"));
  }
  endpoint->addresses = LocalAddresses();
  endpoint->port = ntohs(address.sin_port);
  endpoint->secret = m->secret_;
  m->table_[0].state = PeerState::kAlive;
  m->table_[0].host = HostAndPid();
  m->thread_ = std::thread([raw = m.get()] { raw->HubLoop(); });
  return m;
}

StatusOr<std::unique_ptr<LivenessMonitor>> LivenessMonitor::StartSpoke(
    const LivenessEndpoint& endpoint, int rank, int size, std::chrono::milliseconds timeout) {
  std::unique_ptr<LivenessMonitor> m(new LivenessMonitor(rank, size, timeout));
  std::string tried;
  for (const std::string& host : endpoint.addresses) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(endpoint.port);
    if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) continue;
    auto connection =
        std::make_unique<Connection>(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connection->fd < 0 || !SetNonBlocking(connection->fd)) continue;
    int rc = ::connect(connection->fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{connection->fd, POLLOUT, 0};
      rc = ::poll(&p, 1, static_cast<int>(std::min(kConnectTimeout, timeout).count()));
      int error = ETIMEDOUT;
      socklen_t n = sizeof(error);
      if (rc == 1) ::getsockopt(connection->fd, SOL_SOCKET, SO_ERROR, &error, &n);
      errno = error;
      rc = error == 0 ? 0 : -1;
    }
    if (rc != 0) {
      tried += (tried.empty() ? "" : ", ") + host + " (" + std::strerror(errno) + ")";
      continue;
    }
    SetNoDelay(connection->fd);
    m->hub_ = std::move(connection);
    break;
  }
  if (m->hub_ == nullptr) {
    return Unavailable("liveness: rank " + std::to_string(rank) + " cannot reach rank 0 on port " +
                       std::to_string(endpoint.port) + " at " + tried);
  }
  std::string hello(reinterpret_cast<const char*>(endpoint.secret.data()), endpoint.secret.size());
  PutInt(&hello, static_cast<uint32_t>(rank), 4);
  PutString(&hello, HostAndPid());
  m->hub_->Send(kHello, hello);
  if (!m->hub_->Flush()) return Unavailable(ErrnoText("liveness: hello to rank 0"));
  if (::pipe2(m->wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Internal(ErrnoText("liveness: pipe"));
  }
  m->table_[rank].state = PeerState::kAlive;
  m->table_[rank].host = HostAndPid();
  m->thread_ = std::thread([raw = m.get()] { raw->SpokeLoop(); });
  return m;
}

LivenessMonitor::~LivenessMonitor() {
  stopping_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  for (int fd : wake_pipe_) {
    if (fd >= 0) ::close(fd);
  }
}

void LivenessMonitor::Wake() {
  if (wake_pipe_[1] >= 0) {
    const char byte = 1;
    (void)!::write(wake_pipe_[1], &byte, 1);
  }
}

void LivenessMonitor::Attach(const std::shared_ptr<CommHealth>& health) {
  std::string failure;
  int failed = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    healths_.push_back(health);
    failed = failed_rank_;
    failure = failure_;
  }
  if (!failure.empty()) health->Poison(Unavailable(failure), failed);
}

void LivenessMonitor::SetWarningHandler(WarningHandler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  on_warning_ = std::move(handler);
}

std::vector<PeerView> LivenessMonitor::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_;
}

int LivenessMonitor::BlameForDeadline(uint64_t seq, std::string* why) const {
  std::vector<PeerView> table = Snapshot();
  // This rank's own entry is current, whatever the table's age.
  table[rank_].issued = issued_.load();
  table[rank_].completed = completed_.load();
  table[rank_].silent_ms = 0;
  return comm::BlameForDeadline(table, rank_, seq, timeout_, why);
}

void LivenessMonitor::Fail(int rank, const std::string& why) {
  std::vector<std::weak_ptr<CommHealth>> healths;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.empty()) return;
    failed_rank_ = rank;
    failure_ = why;
    healths = healths_;
  }
  for (const auto& weak : healths) {
    if (auto health = weak.lock()) health->Poison(Unavailable(why), rank);
  }
}

void LivenessMonitor::Warn(const std::string& message, const std::vector<int>& ranks) {
  WarningHandler handler;
  {
    std::lock_guard<std::mutex> lock(mu_);
    handler = on_warning_;
  }
  if (handler) {
    handler(message, ranks);
  } else {
    std::fprintf(stderr, "rank %d: warning: %s\n", rank_, message.c_str());
  }
}

void LivenessMonitor::HubLoop() {
  struct Peer {
    std::unique_ptr<Connection> connection;
    Clock::time_point last_heard;
    Clock::time_point waiting_since;
    std::optional<Clock::time_point> closed_at;  // without a goodbye
  };
  const auto closed_grace = std::min<std::chrono::milliseconds>(kClosedGrace, timeout_ / 2);
  const Clock::time_point start = Clock::now();
  std::vector<Peer> peers(static_cast<size_t>(size_));
  for (Peer& p : peers) p.last_heard = p.waiting_since = start;
  std::vector<PeerView> table = Snapshot();
  std::vector<std::unique_ptr<Connection>> pending;  // accepted, no hello yet
  std::vector<int> warned;
  Clock::time_point next_tick = start;

  // Progress of one rank as reported; tracks since when it waits on the same collective.
  auto record_progress = [&](int r, uint64_t issued, uint64_t completed, Clock::time_point now) {
    PeerView& v = table[r];
    if (completed != v.completed || (v.issued == v.completed && issued > completed)) {
      peers[r].waiting_since = now;
    }
    v.issued = issued;
    v.completed = completed;
  };

  while (!stopping_.load()) {
    std::vector<pollfd> fds;
    fds.push_back({wake_pipe_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const auto& c : pending) fds.push_back({c->fd, POLLIN, 0});
    for (const Peer& p : peers) {
      if (p.connection) {
        fds.push_back({p.connection->fd,
                       static_cast<short>(POLLIN | (p.connection->out.empty() ? 0 : POLLOUT)), 0});
      }
    }
    const int64_t wait_ms = std::max<int64_t>(0, Ms(next_tick - Clock::now()));
    ::poll(fds.data(), fds.size(), static_cast<int>(wait_ms));
    if (stopping_.load()) break;
    char drain[64];
    while (::read(wake_pipe_[0], drain, sizeof(drain)) > 0) {
    }
    const Clock::time_point now = Clock::now();

    for (;;) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) break;
      SetNoDelay(fd);
      pending.push_back(std::make_unique<Connection>(fd));
    }
    // Hellos: the secret, then the rank; anything else is dropped without a word.
    for (auto it = pending.begin(); it != pending.end();) {
      Connection& c = **it;
      const bool open = c.Fill();
      uint8_t type = 0;
      std::string payload;
      bool bad = false;
      bool keep = open && now - c.since < timeout_;
      if (c.NextFrame(&type, &payload, &bad)) {
        keep = false;
        Reader r(payload);
        const std::string secret = r.Bytes(secret_.size());
        const int rank = static_cast<int>(r.Int(4));
        const std::string host = r.String();
        const bool authentic =
            type == kHello && r.ok() && secret.size() == secret_.size() &&
            std::equal(secret.begin(), secret.end(), secret_.begin(),
                       [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; });
        if (authentic && rank > 0 && rank < size_ && !peers[rank].connection &&
            table[rank].state == PeerState::kConnecting) {
          peers[rank].connection = std::move(*it);
          peers[rank].last_heard = now;
          table[rank].state = PeerState::kAlive;
          table[rank].host = host;
        }
      } else if (bad) {
        keep = false;
      }
      it = keep ? std::next(it) : pending.erase(it);
    }
    for (size_t r = 1; r < peers.size(); ++r) {
      Peer& p = peers[r];
      if (!p.connection) continue;
      bool open = p.connection->Fill() && p.connection->Flush();
      uint8_t type = 0;
      std::string payload;
      bool bad = false;
      while (p.connection->NextFrame(&type, &payload, &bad)) {
        p.last_heard = now;
        if (type == kBeat) {
          Reader rd(payload);
          const uint64_t issued = rd.Int(8);
          const uint64_t completed = rd.Int(8);
          if (rd.ok()) record_progress(static_cast<int>(r), issued, completed, now);
        } else if (type == kBye) {
          table[r].state = PeerState::kDeparted;
          open = false;
          break;
        }
      }
      if (bad) open = false;
      if (!open) {
        if (table[r].state != PeerState::kDeparted) p.closed_at = now;
        p.connection.reset();
      }
    }

    if (now < next_tick) continue;
    next_tick = std::max(next_tick + period_, now);
    peers[0].last_heard = now;
    record_progress(0, issued_.load(), completed_.load(), now);
    for (size_t r = 0; r < peers.size(); ++r) {
      PeerView& v = table[r];
      if (peers[r].closed_at && now - *peers[r].closed_at >= closed_grace) {
        v.state = PeerState::kClosed;
      }
      v.silent_ms = v.state == PeerState::kAlive || v.state == PeerState::kConnecting
                        ? Ms(now - peers[r].last_heard)
                        : 0;
      v.waiting_ms = v.issued > v.completed ? Ms(now - peers[r].waiting_since) : 0;
    }
    const LivenessFinding finding = AssessPeers(table, timeout_);
    if (finding.failed_rank >= 0) Fail(finding.failed_rank, finding.failure);
    if (finding.suspects != warned && !finding.suspects.empty()) {
      Warn(finding.warning, finding.suspects);
    }
    warned = finding.suspects;
    int failed_rank;
    std::string failure;
    {
      std::lock_guard<std::mutex> lock(mu_);
      table_ = table;
      failed_rank = failed_rank_;
      failure = failure_;
    }
    const std::string encoded = EncodeTable(table, failed_rank, failure);
    for (size_t r = 1; r < peers.size(); ++r) {
      Peer& p = peers[r];
      if (!p.connection) continue;
      // A peer that does not read (stopped) gets no new tables until it catches up.
      if (p.connection->out.size() < kMaxFrameBytes) p.connection->Send(kTable, encoded);
      p.connection->Flush();
    }
  }
  for (Peer& p : peers) {
    if (!p.connection) continue;
    p.connection->Send(kBye, "");
    p.connection->Flush();
  }
}

void LivenessMonitor::SpokeLoop() {
  Clock::time_point last_table = Clock::now();
  Clock::time_point next_beat = last_table;
  bool hub_departed = false;
  bool warned = false;
  std::optional<Clock::time_point> closed_at;  // the hub's connection, without a goodbye
  const auto closed_grace = std::min<std::chrono::milliseconds>(kClosedGrace, timeout_ / 2);
  while (!stopping_.load()) {
    if (!hub_) {
      if (!closed_at) break;  // the hub said goodbye
      const int64_t left = Ms(*closed_at + closed_grace - Clock::now());
      if (left > 0) {
        pollfd wake{wake_pipe_[0], POLLIN, 0};
        ::poll(&wake, 1, static_cast<int>(left));
        continue;
      }
      Fail(0, DescribeRank(Snapshot(), 0) +
                  " closed its liveness connection without a goodbye: the process died or its "
                  "host went away");
      break;
    }
    pollfd fds[2] = {{wake_pipe_[0], POLLIN, 0},
                     {hub_->fd, static_cast<short>(POLLIN | (hub_->out.empty() ? 0 : POLLOUT)), 0}};
    const int64_t wait_ms = std::max<int64_t>(0, Ms(next_beat - Clock::now()));
    ::poll(fds, 2, static_cast<int>(wait_ms));
    if (stopping_.load()) break;
    char drain[64];
    while (::read(wake_pipe_[0], drain, sizeof(drain)) > 0) {
    }
    const Clock::time_point now = Clock::now();
    bool open = hub_->Fill() && hub_->Flush();
    uint8_t type = 0;
    std::string payload;
    bool bad = false;
    while (hub_->NextFrame(&type, &payload, &bad)) {
      if (type == kBye) {
        hub_departed = true;
        break;
      }
      if (type != kTable) continue;
      std::vector<PeerView> table;
      int failed_rank = -1;
      std::string failure;
      if (!DecodeTable(payload, static_cast<size_t>(size_), &table, &failed_rank, &failure)) {
        continue;
      }
      last_table = now;
      {
        std::lock_guard<std::mutex> lock(mu_);
        table_ = std::move(table);
      }
      if (failed_rank >= 0 && !failure.empty()) Fail(failed_rank, "rank 0 reports: " + failure);
    }
    if (hub_departed) {
      hub_.reset();
      break;
    }
    if (!open || bad) {
      closed_at = now;
      hub_.reset();
      continue;
    }
    if (now < next_beat) continue;
    next_beat = std::max(next_beat + period_, now);
    std::string beat;
    PutInt(&beat, issued_.load(), 8);
    PutInt(&beat, completed_.load(), 8);
    if (hub_->out.size() < kMaxFrameBytes) hub_->Send(kBeat, beat);
    hub_->Flush();
    const int64_t silent = Ms(now - last_table);
    std::vector<PeerView> table;
    {
      std::lock_guard<std::mutex> lock(mu_);
      table_[0].silent_ms = silent;
      table = table_;
    }
    if (silent >= timeout_.count()) {
      Fail(0, DescribeRank(table, 0) + " stopped answering: nothing from it for " +
                  Seconds(silent) + " (distributed.timeout_s " + Seconds(timeout_.count()) +
                  "); the process is stopped or frozen, or its host or network is down");
    } else if (silent >= timeout_.count() / 2) {
      if (!warned) {
        Warn("nothing from " + DescribeRank(table, 0) + " for " + Seconds(silent) +
                 "; the job fails if it stays silent for " + Seconds(timeout_.count()),
             {0});
      }
      warned = true;
    } else {
      warned = false;
    }
  }
  if (hub_) {
    hub_->Send(kBye, "");
    hub_->Flush();
  }
}

}  // namespace dtrain::comm
