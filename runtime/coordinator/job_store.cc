// JobStore on the SQLite C API. Every SQL text here is a constant; values are always bound.
#include "runtime/coordinator/job_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

// PRAGMA application_id of a dtrain job store: "dtrn" in ASCII.
constexpr int kApplicationId = 0x6474726e;
constexpr int kBusyTimeoutMs = 5000;
constexpr int kMinListLimit = 1;
constexpr int kMaxListLimit = 1000;

// kMigrations[v] takes the schema from version v to v + 1; the schema version is the length of
// this array and is kept in PRAGMA user_version. Never edit a shipped step: append a new one.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the initial schema.
    R"sql(
CREATE TABLE jobs (
  id                  INTEGER PRIMARY KEY AUTOINCREMENT,
  name                TEXT    NOT NULL,
  spec_yaml           TEXT    NOT NULL,
  ranks               INTEGER NOT NULL,
  priority            INTEGER NOT NULL,
  max_attempts        INTEGER NOT NULL,
  state               TEXT    NOT NULL,
  attempt             INTEGER NOT NULL DEFAULT 0,
  submitted_ms        INTEGER NOT NULL,
  started_ms          INTEGER NOT NULL DEFAULT 0,
  finished_ms         INTEGER NOT NULL DEFAULT 0,
  reason              TEXT    NOT NULL DEFAULT '',
  launcher_pid        INTEGER NOT NULL DEFAULT 0,
  launcher_start_time INTEGER NOT NULL DEFAULT 0,
  placement           TEXT    NOT NULL DEFAULT '',
  log_path            TEXT    NOT NULL DEFAULT '',
  failing_rank        INTEGER NOT NULL DEFAULT -1,
  exit_code           INTEGER NOT NULL DEFAULT 0,
  signal              INTEGER NOT NULL DEFAULT 0,
  last_log_lines      TEXT    NOT NULL DEFAULT '',
  cancel_requested    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE TABLE transitions (
  id         INTEGER PRIMARY KEY,
  job_id     INTEGER NOT NULL REFERENCES jobs (id),
  from_state TEXT    NOT NULL,
  to_state   TEXT    NOT NULL,
  attempt    INTEGER NOT NULL,
  at_ms      INTEGER NOT NULL,
  reason     TEXT    NOT NULL
);
CREATE INDEX transitions_by_job ON transitions (job_id, id);
CREATE TABLE events (
  job_id  INTEGER NOT NULL REFERENCES jobs (id),
  seq     INTEGER NOT NULL,
  at_ms   INTEGER NOT NULL,
  kind    TEXT    NOT NULL,
  payload TEXT    NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
PRAGMA application_id = 1685353070;
)sql",
    // 1 -> 2: a launched job is an opaque (backend, handle) pair that only its launcher backend
    // reads, so that a backend other than local mpirun needs no column of its own. Rows of the
    // local launcher (pid, start time, log path) become its handle: a JSON object with the
    // shim's pid and start time, the log and the exit file, which sat next to the log.
    R"sql(
ALTER TABLE jobs ADD COLUMN launcher_backend TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN launcher_handle  TEXT NOT NULL DEFAULT '';
UPDATE jobs
   SET launcher_backend = 'local-mpirun',
       launcher_handle = json_object(
           'pid', launcher_pid,
           'start_time', launcher_start_time,
           'log', log_path,
           'exit', rtrim(log_path, replace(log_path, '/', '')) || 'exit')
 WHERE log_path != '';
ALTER TABLE jobs DROP COLUMN launcher_pid;
ALTER TABLE jobs DROP COLUMN launcher_start_time;
ALTER TABLE jobs DROP COLUMN log_path;
)sql",
    // 2 -> 3: the signal that killed the failing rank, as mpirun reports it (issue 10 item 2: a
    // rank killed by SIGKILL was reported only as "mpirun exited with code 137").
    R"sql(
ALTER TABLE jobs ADD COLUMN rank_signal INTEGER NOT NULL DEFAULT 0;
)sql",
    // 3 -> 4: where the job writes its model, metrics and checkpoints, as resolved at launch
    // (issue 16 item 4: nothing said where a job's model went).
    R"sql(
ALTER TABLE jobs ADD COLUMN output_dir TEXT NOT NULL DEFAULT '';
)sql",
    // 4 -> 5: holds, dependencies and owners (issue 16, what Slurm users have): `held` keeps a
    // PENDING job from starting, `after_ids` lists the jobs that must succeed first ("3,5"),
    // `owner` is who the job is for. Older jobs are unheld, without dependencies or owner.
    R"sql(
ALTER TABLE jobs ADD COLUMN held      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN after_ids TEXT    NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN owner     TEXT    NOT NULL DEFAULT '';
CREATE INDEX jobs_by_owner ON jobs (owner, id);
)sql",
    // 5 -> 6: job arrays (issue 16: sweeps): the array a job belongs to (its first job's id; 0:
    // none) and its index in it.
    R"sql(
ALTER TABLE jobs ADD COLUMN array_id    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN array_index INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_array ON jobs (array_id, id);
)sql",
    // 6 -> 7: early stopping of a sweep's trials (issue 16: ASHA): the rule of an array, every
    // trial's metric at each rung it reached (so the decisions survive a restart), and why a job
    // was stopped when not by its user.
    R"sql(
CREATE TABLE early_stopping (
  array_id         INTEGER PRIMARY KEY,
  metric           TEXT    NOT NULL,
  minimize         INTEGER NOT NULL,
  grace_epochs     INTEGER NOT NULL,
  reduction_factor INTEGER NOT NULL
);
CREATE TABLE rung_results (
  array_id INTEGER NOT NULL,
  epoch    INTEGER NOT NULL,
  job_id   INTEGER NOT NULL,
  value    REAL    NOT NULL,
  PRIMARY KEY (array_id, epoch, job_id)
);
ALTER TABLE jobs ADD COLUMN cancel_reason TEXT NOT NULL DEFAULT '';
)sql",
    // 7 -> 8: retention (issue 18 item 5): when a finished job's log lines and progress events
    // were removed (0: never), and an index that finds the jobs due for it without a scan.
    R"sql(
ALTER TABLE jobs ADD COLUMN compacted_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_to_compact ON jobs (finished_ms) WHERE finished_ms > 0 AND compacted_ms = 0;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// Column order read by ReadJob().
constexpr char kJobColumns[] =
    "id, name, spec_yaml, ranks, priority, max_attempts, state, attempt, submitted_ms, "
    "started_ms, finished_ms, reason, launcher_backend, launcher_handle, placement, "
    "failing_rank, exit_code, signal, last_log_lines, cancel_requested, rank_signal, output_dir, "
    "held, after_ids, owner, array_id, array_index, cancel_reason, compacted_ms";

StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StatusCode::kUnavailable;
    case SQLITE_CORRUPT:
      return StatusCode::kDataLoss;
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
      return StatusCode::kFailedPrecondition;
    case SQLITE_FULL:
      return StatusCode::kResourceExhausted;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
      return StatusCode::kInvalidArgument;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return StatusCode::kPermissionDenied;
    default:
      return StatusCode::kInternal;
  }
}

// "<context>: <sqlite3_errmsg>", with a code derived from `rc`. Call it before anything else
// touches the connection (a ROLLBACK would overwrite the message).
Status SqliteError(sqlite3* db, int rc, const std::string& context) {
  const char* msg =
      db != nullptr && sqlite3_errcode(db) != SQLITE_OK ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Status(CodeFor(rc), context + ": " + msg);
}

std::string JobLabel(int64_t id) { return "job " + std::to_string(id); }

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};

// A prepared statement. Binding errors are remembered and reported by the next Step(), so that
// call sites can bind a whole row without checking each call.
class Statement {
 public:
  // `sql` is a constant text; values go through Bind*(), indices are 1-based as in SQLite.
  static StatusOr<Statement> Prepare(sqlite3* db, const std::string& sql,
                                     const std::string& context) {
    sqlite3_stmt* raw = nullptr;
    int rc =
        sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size() + 1), 0, &raw, nullptr);
    std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt(raw);
    if (rc != SQLITE_OK) return SqliteError(db, rc, context);
    if (stmt == nullptr) return Internal(context + ": empty SQL statement");
    return Statement(db, std::move(stmt), context);
  }

  Statement& BindInt(int index, int64_t value) {
    return Check(sqlite3_bind_int64(stmt_.get(), index, value));
  }
  Statement& BindText(int index, const std::string& value) {
    return Check(sqlite3_bind_text64(stmt_.get(), index, value.data(), value.size(),
                                     SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Statement& BindDouble(int index, double value) {
    return Check(sqlite3_bind_double(stmt_.get(), index, value));
  }
  Statement& BindNull(int index) { return Check(sqlite3_bind_null(stmt_.get(), index)); }
  // NULL when unset; used with COALESCE(?, column) to leave a column as it is.
  template <typename T>
  Statement& BindOptionalInt(int index, const std::optional<T>& value) {
    return value ? BindInt(index, static_cast<int64_t>(*value)) : BindNull(index);
  }
  Statement& BindOptionalText(int index, const std::optional<std::string>& value) {
    return value ? BindText(index, *value) : BindNull(index);
  }

  // true: a row is ready to read; false: the statement has finished.
  StatusOr<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqliteError(db_, bind_rc_, context_);
    int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, context_);
  }

  // Runs the statement to completion, ignoring any rows.
  Status Run() {
    for (;;) {
      StatusOr<bool> row = Step();
      if (!row.ok()) return row.status();
      if (!*row) return Status::Ok();
    }
  }

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_.get(), column); }
  double Double(int column) const { return sqlite3_column_double(stmt_.get(), column); }
  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_.get(), column);
    if (text == nullptr) return std::string();
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), column)));
  }

 private:
  Statement(sqlite3* db, std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt, std::string context)
      : db_(db), stmt_(std::move(stmt)), context_(std::move(context)) {}

  Statement& Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
  }

  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt_;
  std::string context_;
  int bind_rc_ = SQLITE_OK;
};

// Runs constant SQL without parameters (schema, PRAGMAs, BEGIN/COMMIT).
Status Exec(sqlite3* db, const std::string& sql, const std::string& context) {
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? Status::Ok() : SqliteError(db, rc, context);
}

// BEGIN IMMEDIATE (takes the write lock up front, so a transaction never fails half-way on a
// lock upgrade) ... Commit(); rolls back on destruction unless committed. Declare it before the
// Statements it covers, so that they are finalised first.
class WriteTransaction {
 public:
  WriteTransaction(sqlite3* db, std::string context) : db_(db), context_(std::move(context)) {}
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  ~WriteTransaction() {
    // SQLite rolls back by itself after some errors (I/O, full disk); don't roll back twice.
    if (open_ && sqlite3_get_autocommit(db_) == 0) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  Status Begin() {
    DTRAIN_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE", context_));
    open_ = true;
    return Status::Ok();
  }
  // Durable when it returns (synchronous=FULL). On failure the destructor rolls back.
  Status Commit() {
    DTRAIN_RETURN_IF_ERROR(Exec(db_, "COMMIT", context_));
    open_ = false;
    return Status::Ok();
  }

 private:
  sqlite3* db_;
  std::string context_;
  bool open_ = false;
};

// "2026-12-06T05:00:00Z": a time in RFC 3339 UTC, to the second.
std::string FormatRfc3339(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

StatusOr<int64_t> QueryInt(sqlite3* db, const std::string& sql, const std::string& context) {
  DTRAIN_ASSIGN_OR_RETURN(Statement stmt, Statement::Prepare(db, sql, context));
  DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Internal(context + ": '" + sql + "' returned no row");
  return stmt.Int(0);
}

StatusOr<JobState> ParseState(const std::string& text, int64_t id) {
  std::optional<JobState> state = JobStateFromString(text);
  if (!state) return DataLoss(JobLabel(id) + " has unknown state '" + text + "' in the store");
  return *state;
}

// "3,5" -> {3, 5}: the after_ids column.
std::string FormatJobIds(const std::vector<int64_t>& ids) {
  std::string out;
  for (int64_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

StatusOr<std::vector<int64_t>> ParseJobIds(const std::string& text, int64_t id) {
  std::vector<int64_t> ids;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    int64_t value = 0;
    const char* first = text.data() + start;
    const char* last = text.data() + comma;
    const auto [end, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || end != last || value < 1) {
      return DataLoss(JobLabel(id) + " has unreadable dependencies '" + text + "' in the store");
    }
    ids.push_back(value);
    start = comma + 1;
  }
  return ids;
}

StatusOr<JobRecord> ReadJob(const Statement& stmt) {
  JobRecord job;
  job.id = stmt.Int(0);
  job.name = stmt.Text(1);
  job.spec_yaml = stmt.Text(2);
  job.ranks = static_cast<int>(stmt.Int(3));
  job.priority = static_cast<int>(stmt.Int(4));
  job.max_attempts = static_cast<int>(stmt.Int(5));
  DTRAIN_ASSIGN_OR_RETURN(job.state, ParseState(stmt.Text(6), job.id));
  job.attempt = static_cast<int>(stmt.Int(7));
  job.submitted_ms = stmt.Int(8);
  job.started_ms = stmt.Int(9);
  job.finished_ms = stmt.Int(10);
  job.reason = stmt.Text(11);
  job.launcher_backend = stmt.Text(12);
  job.launcher_handle = stmt.Text(13);
  job.placement = stmt.Text(14);
  job.failing_rank = static_cast<int>(stmt.Int(15));
  job.exit_code = static_cast<int>(stmt.Int(16));
  job.signal = static_cast<int>(stmt.Int(17));
  job.last_log_lines = stmt.Text(18);
  job.cancel_requested = stmt.Int(19) != 0;
  job.rank_signal = static_cast<int>(stmt.Int(20));
  job.output_dir = stmt.Text(21);
  job.held = stmt.Int(22) != 0;
  DTRAIN_ASSIGN_OR_RETURN(job.after, ParseJobIds(stmt.Text(23), job.id));
  job.owner = stmt.Text(24);
  job.array_id = stmt.Int(25);
  job.array_index = static_cast<int>(stmt.Int(26));
  job.cancel_reason = stmt.Text(27);
  job.compacted_ms = stmt.Int(28);
  return job;
}

StatusOr<std::vector<JobRecord>> ReadJobs(Statement& stmt) {
  std::vector<JobRecord> jobs;
  for (;;) {
    DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return jobs;
    DTRAIN_ASSIGN_OR_RETURN(JobRecord job, ReadJob(stmt));
    jobs.push_back(std::move(job));
  }
}

// The job's state, or nullopt when there is no job `id`.
StatusOr<std::optional<JobState>> StateOf(sqlite3* db, int64_t id, const std::string& context) {
  DTRAIN_ASSIGN_OR_RETURN(Statement stmt,
                          Statement::Prepare(db, "SELECT state FROM jobs WHERE id = ?1", context));
  stmt.BindInt(1, id);
  DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<JobState>();
  DTRAIN_ASSIGN_OR_RETURN(JobState state, ParseState(stmt.Text(0), id));
  return std::optional<JobState>(state);
}

Status CheckExists(sqlite3* db, int64_t id, const std::string& context) {
  DTRAIN_ASSIGN_OR_RETURN(std::optional<JobState> state, StateOf(db, id, context));
  if (!state) return NotFound(JobLabel(id) + " not found");
  return Status::Ok();
}

Status InsertTransition(sqlite3* db, int64_t id, JobState from, JobState to, int64_t attempt,
                        int64_t at_ms, const std::string& reason, const std::string& context) {
  DTRAIN_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(db,
                         "INSERT INTO transitions (job_id, from_state, to_state, attempt, at_ms, "
                         "reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                         context));
  stmt.BindInt(1, id)
      .BindText(2, ToString(from))
      .BindText(3, ToString(to))
      .BindInt(4, attempt)
      .BindInt(5, at_ms)
      .BindText(6, reason);
  return stmt.Run();
}

// Appends an event with seq = 1 + the job's largest seq; call inside a write transaction so that
// two appends cannot pick the same seq.
StatusOr<int64_t> InsertEvent(sqlite3* db, int64_t id, const std::string& kind,
                              const std::string& payload, int64_t at_ms,
                              const std::string& context) {
  DTRAIN_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(db,
                         "INSERT INTO events (job_id, seq, at_ms, kind, payload) "
                         "SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4 FROM events "
                         "WHERE job_id = ?1 RETURNING seq",
                         context));
  stmt.BindInt(1, id).BindInt(2, at_ms).BindText(3, kind).BindText(4, payload);
  DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Internal(context + ": the event insert returned no seq");
  int64_t seq = stmt.Int(0);
  DTRAIN_RETURN_IF_ERROR(stmt.Run());
  return seq;
}

std::string InsertContext(const NewJob& job) { return "insert job '" + job.name + "'"; }

// The job row, its first transition and its first "state" event; call inside a write
// transaction. Returns the new id.
StatusOr<int64_t> InsertJobRows(sqlite3* db, const NewJob& job) {
  std::string context = InsertContext(job);
  int64_t id = 0;
  {
    DTRAIN_ASSIGN_OR_RETURN(
        Statement stmt,
        Statement::Prepare(db,
                           "INSERT INTO jobs (name, spec_yaml, ranks, priority, max_attempts, "
                           "state, submitted_ms, reason, held, after_ids, owner, array_id, "
                           "array_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                           "?12, ?13) RETURNING id",
                           context));
    stmt.BindText(1, job.name)
        .BindText(2, job.spec_yaml)
        .BindInt(3, job.ranks)
        .BindInt(4, job.priority)
        .BindInt(5, job.max_attempts)
        .BindText(6, ToString(JobState::kPending))
        .BindInt(7, job.submitted_ms)
        .BindText(8, "submitted")
        .BindInt(9, job.held ? 1 : 0)
        .BindText(10, FormatJobIds(job.after))
        .BindText(11, job.owner)
        .BindInt(12, job.array_id)
        .BindInt(13, std::max(0, job.array_index));
    DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Internal(context + ": the insert returned no id");
    id = stmt.Int(0);
    DTRAIN_RETURN_IF_ERROR(stmt.Run());
  }
  if (job.array_index >= 0 && job.array_id == 0) {
    // The first element of an array names it.
    DTRAIN_ASSIGN_OR_RETURN(
        Statement stmt,
        Statement::Prepare(db, "UPDATE jobs SET array_id = ?1 WHERE id = ?1", context));
    stmt.BindInt(1, id);
    DTRAIN_RETURN_IF_ERROR(stmt.Run());
  }
  context = "insert " + JobLabel(id) + " ('" + job.name + "')";
  DTRAIN_RETURN_IF_ERROR(InsertTransition(db, id, JobState::kPending, JobState::kPending, 0,
                                          job.submitted_ms, "submitted", context));
  DTRAIN_RETURN_IF_ERROR(
      InsertEvent(db, id, "state", ToString(JobState::kPending), job.submitted_ms, context)
          .status());
  return id;
}

std::string TransitionContext(const TransitionRequest& t) {
  return "transition " + JobLabel(t.id) + " " + ToString(t.expected_from) + " -> " + ToString(t.to);
}

// The compare-and-set of `t` inside a write transaction: the job row, a transitions row and a
// "state" event. When the job is not in t.expected_from nothing is written and `*outcome` says
// why (FAILED_PRECONDITION, or NOT_FOUND for an unknown id); the return value is for storage
// failures only.
Status WriteTransitionRows(sqlite3* db, const TransitionRequest& t, StatusOr<int64_t>* outcome) {
  const std::string context = TransitionContext(t);
  int64_t attempt = 0;
  bool changed = false;
  {
    // Compare-and-set: the WHERE clause only matches while the job is still in expected_from.
    DTRAIN_ASSIGN_OR_RETURN(Statement stmt,
                            Statement::Prepare(db,
                                               "UPDATE jobs SET state = ?1, reason = ?2, "
                                               "attempt = COALESCE(?3, attempt), "
                                               "started_ms = COALESCE(?4, started_ms), "
                                               // Every terminal state has its time,
                                               // also a cancel of a queued job, which
                                               // gives none (retention goes by it).
                                               "finished_ms = COALESCE(?5, CASE WHEN ?1 IN "
                                               "('SUCCEEDED', 'FAILED', 'CANCELLED') AND "
                                               "finished_ms = 0 THEN ?17 ELSE finished_ms END), "
                                               "launcher_backend = COALESCE(?6, launcher_backend), "
                                               "launcher_handle = COALESCE(?7, launcher_handle), "
                                               "placement = COALESCE(?8, placement), "
                                               "failing_rank = COALESCE(?9, failing_rank), "
                                               "exit_code = COALESCE(?10, exit_code), "
                                               "signal = COALESCE(?11, signal), "
                                               "last_log_lines = COALESCE(?12, last_log_lines), "
                                               "rank_signal = COALESCE(?15, rank_signal), "
                                               "output_dir = COALESCE(?16, output_dir), "
                                               // A hold means "do not start": it ends with
                                               // PENDING (a hold that lost the race with a
                                               // start shows no held RUNNING job).
                                               "held = CASE WHEN ?1 = 'PENDING' THEN held "
                                               "ELSE 0 END "
                                               "WHERE id = ?13 AND state = ?14 RETURNING attempt",
                                               context));
    const TransitionUpdate& u = t.update;
    stmt.BindText(1, ToString(t.to))
        .BindText(2, t.reason)
        .BindOptionalInt(3, u.attempt)
        .BindOptionalInt(4, u.started_ms)
        .BindOptionalInt(5, u.finished_ms)
        .BindOptionalText(6, u.launcher_backend)
        .BindOptionalText(7, u.launcher_handle)
        .BindOptionalText(8, u.placement)
        .BindOptionalInt(9, u.failing_rank)
        .BindOptionalInt(10, u.exit_code)
        .BindOptionalInt(11, u.signal)
        .BindOptionalText(12, u.last_log_lines)
        .BindInt(13, t.id)
        .BindText(14, ToString(t.expected_from))
        .BindOptionalInt(15, u.rank_signal)
        .BindOptionalText(16, u.output_dir)
        .BindInt(17, t.at_ms);
    DTRAIN_ASSIGN_OR_RETURN(changed, stmt.Step());
    if (changed) attempt = stmt.Int(0);
    DTRAIN_RETURN_IF_ERROR(stmt.Run());
  }
  if (!changed) {
    DTRAIN_ASSIGN_OR_RETURN(std::optional<JobState> actual, StateOf(db, t.id, context));
    *outcome = actual ? FailedPrecondition(JobLabel(t.id) + " is " + ToString(*actual) + ", not " +
                                           ToString(t.expected_from))
                      : NotFound(JobLabel(t.id) + " not found");
    return Status::Ok();
  }
  DTRAIN_RETURN_IF_ERROR(
      InsertTransition(db, t.id, t.expected_from, t.to, attempt, t.at_ms, t.reason, context));
  DTRAIN_RETURN_IF_ERROR(InsertEvent(db, t.id, "state", ToString(t.to), t.at_ms, context).status());
  *outcome = attempt;
  return Status::Ok();
}

// Connection settings and schema migration; `label` names the store in errors.
Status Configure(sqlite3* db, const std::string& label, bool in_memory) {
  const std::string context = "cannot open job store " + label;
  int rc = sqlite3_busy_timeout(db, kBusyTimeoutMs);
  if (rc != SQLITE_OK) return SqliteError(db, rc, context);

  // The first statement that reads the file: a file that is not SQLite fails here.
  StatusOr<int64_t> version = QueryInt(db, "PRAGMA user_version", context);
  if (!version.ok()) {
    int code = sqlite3_errcode(db) & 0xff;
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
      return Status(CodeFor(code),
                    label + " is not a dtrain job store: " + std::string(sqlite3_errmsg(db)));
    }
    return version.status();
  }
  DTRAIN_ASSIGN_OR_RETURN(int64_t app_id, QueryInt(db, "PRAGMA application_id", context));
  if (app_id != 0 && app_id != kApplicationId) {
    return FailedPrecondition(label + " is not a dtrain job store: its application_id is " +
                              std::to_string(app_id) + ", not " + std::to_string(kApplicationId));
  }
  if (*version > kSchemaVersion) {
    return FailedPrecondition(label + " has job store schema version " + std::to_string(*version) +
                              " but this dtrain knows only up to " +
                              std::to_string(kSchemaVersion) + "; use a newer dtrain");
  }
  if (sqlite3_db_readonly(db, "main") == 1) {
    return FailedPrecondition(context + ": the file is read-only");
  }

  // journal_mode answers with the mode now in effect; in-memory databases stay "memory".
  {
    DTRAIN_ASSIGN_OR_RETURN(Statement stmt,
                            Statement::Prepare(db, "PRAGMA journal_mode = WAL", context));
    DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    std::string mode = row ? stmt.Text(0) : "";
    if (!in_memory && mode != "wal") {
      return FailedPrecondition(context + ": cannot switch to WAL journal mode (got '" + mode +
                                "'); is the directory on a file system without shared memory?");
    }
  }
  DTRAIN_RETURN_IF_ERROR(Exec(db, "PRAGMA synchronous = FULL", context));
  DTRAIN_RETURN_IF_ERROR(Exec(db, "PRAGMA foreign_keys = ON", context));
  DTRAIN_ASSIGN_OR_RETURN(int64_t foreign_keys, QueryInt(db, "PRAGMA foreign_keys", context));
  if (foreign_keys != 1) return Internal(context + ": this SQLite lacks foreign key support");

  if (*version == kSchemaVersion) return Status::Ok();
  WriteTransaction txn(db, context);
  DTRAIN_RETURN_IF_ERROR(txn.Begin());
  // Re-read under the write lock: another process may have migrated since.
  DTRAIN_ASSIGN_OR_RETURN(int64_t current, QueryInt(db, "PRAGMA user_version", context));
  if (current == 0) {
    DTRAIN_ASSIGN_OR_RETURN(int64_t tables,
                            QueryInt(db, "SELECT COUNT(*) FROM sqlite_schema", context));
    if (tables != 0) {
      return FailedPrecondition(label +
                                " is not a dtrain job store: it is an SQLite database that "
                                "already holds other tables");
    }
  }
  for (int64_t v = current; v < kSchemaVersion; ++v) {
    DTRAIN_RETURN_IF_ERROR(
        Exec(db, kMigrations[v],
             context + ": schema migration " + std::to_string(v) + " -> " + std::to_string(v + 1)));
  }
  // PRAGMA takes no bound parameters; kSchemaVersion is a compile-time constant.
  DTRAIN_RETURN_IF_ERROR(
      Exec(db, "PRAGMA user_version = " + std::to_string(kSchemaVersion), context));
  return txn.Commit();
}

}  // namespace

const char* ToString(JobState state) {
  switch (state) {
    case JobState::kPending:
      return "PENDING";
    case JobState::kRunning:
      return "RUNNING";
    case JobState::kSucceeded:
      return "SUCCEEDED";
    case JobState::kFailed:
      return "FAILED";
    case JobState::kCancelled:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

std::optional<JobState> JobStateFromString(const std::string& s) {
  for (JobState state : {JobState::kPending, JobState::kRunning, JobState::kSucceeded,
                         JobState::kFailed, JobState::kCancelled}) {
    if (s == ToString(state)) return state;
  }
  return std::nullopt;
}

bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

void JobStore::DbCloser::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

JobStore::JobStore(DbHandle db, DbHandle reader)
    : db_(std::move(db)),
      reader_(std::move(reader)),
      reader_db_(reader_ ? reader_.get() : db_.get()),
      reader_mu_(reader_ ? &read_mu_ : &mu_) {}

JobStore::~JobStore() = default;

StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  const bool in_memory = path.empty() || path == ":memory:";
  const std::string label = in_memory ? "(in memory)" : "'" + path + "'";
  if (!in_memory) {
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      return NotFound("cannot open job store " + label + ": directory '" + dir.string() +
                      "' does not exist");
    }
    if (fs::is_directory(path, ec)) {
      return InvalidArgument("cannot open job store " + label + ": it is a directory");
    }
  }
  sqlite3* raw = nullptr;
  // NOMUTEX: the connection is serialised by JobStore::mu_.
  int rc =
      sqlite3_open_v2(in_memory ? ":memory:" : path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbHandle db(raw);  // owns the handle even when the open failed
  if (rc != SQLITE_OK) return SqliteError(db.get(), rc, "cannot open job store " + label);
  // Owner-only whatever the umask: specs and logs of every job are in it. SQLite creates its
  // -wal and -shm files with the database file's mode.
  if (!in_memory && ::chmod(path.c_str(), 0600) != 0) {
    return Internal("cannot make job store " + label + " owner-only: " + std::strerror(errno));
  }
  DTRAIN_RETURN_IF_ERROR(Configure(db.get(), label, in_memory));
  DbHandle reader;
  if (!in_memory) {
    // A second connection for reads: in WAL mode it reads the last commit while the writer
    // holds its lock and fsyncs. query_only keeps it from ever writing.
    sqlite3* raw_reader = nullptr;
    rc = sqlite3_open_v2(path.c_str(), &raw_reader, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                         nullptr);
    reader.reset(raw_reader);
    const std::string context = "cannot open job store " + label + " for reading";
    if (rc != SQLITE_OK) return SqliteError(reader.get(), rc, context);
    rc = sqlite3_busy_timeout(reader.get(), kBusyTimeoutMs);
    if (rc != SQLITE_OK) return SqliteError(reader.get(), rc, context);
    DTRAIN_RETURN_IF_ERROR(Exec(reader.get(), "PRAGMA query_only = 1", context));
  }
  // The constructor is private, so make_unique cannot reach it; ownership is taken at once.
  return std::unique_ptr<JobStore>(new JobStore(std::move(db), std::move(reader)));
}

// One queued write: exactly one of `job`, `event` and `transition` is set.
struct JobStore::PendingWrite {
  const NewJob* job = nullptr;
  const NewEvent* event = nullptr;
  const TransitionRequest* transition = nullptr;

  // Set by the leader before `done`; read by the caller once it sees `done`.
  StatusOr<int64_t> result = Internal("the write was not attempted (the writer ran out of memory)");
  bool done = false;  // guarded by JobStore::queue_mu_

  std::string Context() const {
    if (job != nullptr) return InsertContext(*job);
    if (event != nullptr) return "append '" + event->kind + "' event to " + JobLabel(event->job_id);
    return TransitionContext(*transition);
  }

  // Writes this request's rows inside an open write transaction. A non-OK return is a storage
  // failure and dooms the transaction; a refusal that wrote nothing (a transition whose job is no
  // longer in its expected state, an event for an unknown job) returns OK with the refusal in
  // `result`, so the rest of a group commit goes ahead.
  Status WriteRows(sqlite3* db) {
    if (job != nullptr) {
      StatusOr<int64_t> id = InsertJobRows(db, *job);
      if (!id.ok()) return id.status();
      result = *id;
      return Status::Ok();
    }
    if (event != nullptr) {
      const std::string context = Context();
      DTRAIN_ASSIGN_OR_RETURN(std::optional<JobState> state, StateOf(db, event->job_id, context));
      if (!state) {
        result = NotFound(JobLabel(event->job_id) + " not found");
        return Status::Ok();
      }
      StatusOr<int64_t> seq =
          InsertEvent(db, event->job_id, event->kind, event->payload, event->at_ms, context);
      if (!seq.ok()) return seq.status();
      result = *seq;
      return Status::Ok();
    }
    return WriteTransitionRows(db, *transition, &result);
  }

  // This request in a transaction of its own; durable when it returns.
  void WriteAlone(sqlite3* db) {
    WriteTransaction txn(db, Context());
    Status s = txn.Begin();
    if (s.ok()) s = WriteRows(db);
    if (s.ok() && result.ok()) s = txn.Commit();
    if (!s.ok()) result = s;
  }
};

StatusOr<int64_t> JobStore::Insert(const NewJob& job) {
  const std::string context = InsertContext(job);
  if (job.ranks < 1) {
    return InvalidArgument(context + ": ranks must be >= 1, got " + std::to_string(job.ranks));
  }
  if (job.max_attempts < 1) {
    return InvalidArgument(context + ": max_attempts must be >= 1, got " +
                           std::to_string(job.max_attempts));
  }
  PendingWrite request;
  request.job = &job;
  SubmitWrites(&request, 1);
  return std::move(request.result);
}

void JobStore::SubmitWrites(PendingWrite* requests, size_t count) {
  // Allocated before queueing, so that nothing between queueing and stepping down can throw and
  // leave a request queued or the leader seat taken.
  std::vector<PendingWrite*> batch;
  batch.reserve(kMaxWritesPerBatch);
  std::unique_lock<std::mutex> lock(queue_mu_);
  for (size_t i = 0; i < count; ++i) queue_.push_back(&requests[i]);
  // Requests leave the queue in order, so the last one is done only when all of them are.
  PendingWrite& last = requests[count - 1];
  while (!last.done) {
    if (leader_active_) {
      queue_cv_.wait(lock);
      continue;
    }
    // Lead: take the oldest requests (ours among them unless a full batch is ahead of them).
    const auto end =
        queue_.begin() + static_cast<ptrdiff_t>(std::min(queue_.size(), batch.capacity()));
    batch.assign(queue_.begin(), end);
    queue_.erase(queue_.begin(), end);
    leader_active_ = true;
    ++stats_.batches;
    stats_.writes += static_cast<int64_t>(batch.size());
    stats_.in_flight = static_cast<int64_t>(batch.size());
    stats_.largest_batch = std::max(stats_.largest_batch, static_cast<int64_t>(batch.size()));
    lock.unlock();
    bool fell_back = false;
    try {
      fell_back = WriteBatch(batch);
    } catch (...) {
      // Out of memory while writing: the transaction rolled back; requests already written alone
      // hold their results, the rest keep "not attempted". Stepping down matters more than the
      // exception: rethrowing would strand the waiting callers.
    }
    lock.lock();
    for (PendingWrite* w : batch) w->done = true;
    leader_active_ = false;
    stats_.in_flight = 0;
    if (fell_back) ++stats_.fallbacks;
    queue_cv_.notify_all();
  }
}

bool JobStore::WriteBatch(const std::vector<PendingWrite*>& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3* db = db_.get();
  if (batch.size() == 1) {
    batch.front()->WriteAlone(db);
    return false;
  }
  {
    WriteTransaction txn(db, "group commit of " + std::to_string(batch.size()) + " writes");
    Status begin = txn.Begin();
    if (!begin.ok()) {
      // Nothing was written; one transaction per request would start the same way.
      for (PendingWrite* w : batch) {
        w->result = Status(begin.code(), w->Context() + ": " + begin.message());
      }
      return false;
    }
    bool written = true;
    for (PendingWrite* w : batch) {
      if (!w->WriteRows(db).ok()) {
        written = false;
        break;
      }
    }
    if (written && txn.Commit().ok()) return false;
  }  // rolled back: nothing of the batch was written
  // One request (or the commit) failed: retry each alone, in queue order, so that only the bad
  // one fails and each caller gets its own status.
  for (PendingWrite* w : batch) {
    w->result = Internal("the write was not attempted");
    w->WriteAlone(db);
  }
  return true;
}

JobStore::WriteQueueStats JobStore::GetWriteQueueStats() const {
  std::lock_guard<std::mutex> lock(queue_mu_);
  WriteQueueStats stats = stats_;
  stats.queued = static_cast<int64_t>(queue_.size());
  return stats;
}

Status JobStore::Transition(int64_t id, JobState expected_from, JobState to,
                            const std::string& reason, int64_t at_ms,
                            const TransitionUpdate& update) {
  TransitionRequest request{id, expected_from, to, reason, at_ms, update};
  return Transitions({request}).front();
}

std::vector<Status> JobStore::Transitions(const std::vector<TransitionRequest>& requests) {
  std::vector<Status> statuses;
  if (requests.empty()) return statuses;
  std::vector<PendingWrite> writes(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) writes[i].transition = &requests[i];
  SubmitWrites(writes.data(), writes.size());
  statuses.reserve(writes.size());
  for (const PendingWrite& w : writes) statuses.push_back(w.result.status());
  return statuses;
}

Status JobStore::SetCancelRequested(int64_t id, const std::string& reason) {
  const std::string context = "request cancellation of " + JobLabel(id);
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3* db = db_.get();
  DTRAIN_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(
          db, "UPDATE jobs SET cancel_requested = 1, cancel_reason = ?2 WHERE id = ?1", context));
  stmt.BindInt(1, id).BindText(2, reason);
  DTRAIN_RETURN_IF_ERROR(stmt.Run());
  if (sqlite3_changes(db) == 0) return NotFound(JobLabel(id) + " not found");
  return Status::Ok();
}

Status JobStore::SetEarlyStopping(int64_t array_id, const EarlyStoppingRule& rule) {
  const std::string context = "store the early stopping of array " + std::to_string(array_id);
  std::lock_guard<std::mutex> lock(mu_);
  DTRAIN_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(db_.get(),
                         "INSERT OR REPLACE INTO early_stopping (array_id, metric, minimize, "
                         "grace_epochs, reduction_factor) VALUES (?1, ?2, ?3, ?4, ?5)",
                         context));
  stmt.BindInt(1, array_id)
      .BindText(2, rule.metric)
      .BindInt(3, rule.minimize ? 1 : 0)
      .BindInt(4, rule.grace_epochs)
      .BindInt(5, rule.reduction_factor);
  return stmt.Run();
}

StatusOr<std::optional<EarlyStoppingRule>> JobStore::EarlyStoppingOf(int64_t array_id) const {
  const std::string context = "read the early stopping of array " + std::to_string(array_id);
  std::lock_guard<std::mutex> lock(mu_);
  DTRAIN_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(db_.get(),
                         "SELECT metric, minimize, grace_epochs, reduction_factor FROM "
                         "early_stopping WHERE array_id = ?1",
                         context));
  stmt.BindInt(1, array_id);
  DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<EarlyStoppingRule>();
  EarlyStoppingRule rule;
  rule.metric = stmt.Text(0);
  rule.minimize = stmt.Int(1) != 0;
  rule.grace_epochs = static_cast<int>(stmt.Int(2));
  rule.reduction_factor = static_cast<int>(stmt.Int(3));
  return std::optional<EarlyStoppingRule>(rule);
}

StatusOr<std::vector<double>> JobStore::RecordRungResult(int64_t array_id, int epoch, int64_t job,
                                                         double value) {
  const std::string context = "record " + JobLabel(job) + "'s result at epoch " +
                              std::to_string(epoch) + " of array " + std::to_string(array_id);
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3* db = db_.get();
  {
    // A retried attempt that reaches the rung again replaces its earlier result.
    DTRAIN_ASSIGN_OR_RETURN(
        Statement insert,
        Statement::Prepare(db,
                           "INSERT OR REPLACE INTO rung_results (array_id, epoch, job_id, value) "
                           "VALUES (?1, ?2, ?3, ?4)",
                           context));
    insert.BindInt(1, array_id).BindInt(2, epoch).BindInt(3, job).BindDouble(4, value);
    DTRAIN_RETURN_IF_ERROR(insert.Run());
  }
  DTRAIN_ASSIGN_OR_RETURN(
      Statement select,
      Statement::Prepare(db,
                         "SELECT value FROM rung_results WHERE array_id = ?1 AND epoch = ?2 "
                         "ORDER BY job_id",
                         context));
  select.BindInt(1, array_id).BindInt(2, epoch);
  std::vector<double> values;
  for (;;) {
    DTRAIN_ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) return values;
    values.push_back(select.Double(0));
  }
}

Status JobStore::UpdatePending(int64_t id, const std::string& sql, int64_t value,
                               const std::string& context) {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3* db = db_.get();
  DTRAIN_ASSIGN_OR_RETURN(Statement stmt, Statement::Prepare(db, sql, context));
  stmt.BindInt(1, id).BindText(2, ToString(JobState::kPending)).BindInt(3, value);
  DTRAIN_RETURN_IF_ERROR(stmt.Run());
  if (sqlite3_changes(db) > 0) return Status::Ok();
  DTRAIN_ASSIGN_OR_RETURN(std::optional<JobState> state, StateOf(db, id, context));
  if (!state) return NotFound(JobLabel(id) + " not found");
  return FailedPrecondition(JobLabel(id) + " is " + ToString(*state) +
                            "; only a PENDING job can be held, released or given a new priority");
}

StatusOr<std::vector<int64_t>> JobStore::CompactFinished(int64_t before_ms, int limit,
                                                         int64_t now_ms) {
  const std::string context = "compact finished jobs";
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3* db = db_.get();
  WriteTransaction txn(db, context);
  DTRAIN_RETURN_IF_ERROR(txn.Begin());
  std::vector<int64_t> ids;
  {
    DTRAIN_ASSIGN_OR_RETURN(
        Statement select,
        Statement::Prepare(db,
                           "SELECT id FROM jobs WHERE finished_ms > 0 AND compacted_ms = 0 AND "
                           "finished_ms < ?1 ORDER BY finished_ms LIMIT ?2",
                           context));
    select.BindInt(1, before_ms).BindInt(2, limit);
    for (;;) {
      DTRAIN_ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      ids.push_back(select.Int(0));
    }
  }
  const std::string note =
      "(this job's log lines and progress events were removed by the "
      "coordinator's retention at " +
      FormatRfc3339(now_ms) + "; its history, reason and last lines are kept)";
  for (int64_t id : ids) {
    // One event stays, after every removed one, so that a watcher learns why there are none.
    DTRAIN_ASSIGN_OR_RETURN(
        Statement last,
        Statement::Prepare(db, "SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?1",
                           context));
    last.BindInt(1, id);
    DTRAIN_ASSIGN_OR_RETURN(bool row, last.Step());
    const int64_t seq = row ? last.Int(0) + 1 : 1;
    DTRAIN_ASSIGN_OR_RETURN(
        Statement drop, Statement::Prepare(db, "DELETE FROM events WHERE job_id = ?1", context));
    drop.BindInt(1, id);
    DTRAIN_RETURN_IF_ERROR(drop.Run());
    DTRAIN_ASSIGN_OR_RETURN(
        Statement add, Statement::Prepare(db,
                                          "INSERT INTO events (job_id, seq, at_ms, kind, payload) "
                                          "VALUES (?1, ?2, ?3, 'log', ?4)",
                                          context));
    add.BindInt(1, id).BindInt(2, seq).BindInt(3, now_ms).BindText(4, note);
    DTRAIN_RETURN_IF_ERROR(add.Run());
    DTRAIN_ASSIGN_OR_RETURN(
        Statement mark,
        Statement::Prepare(db, "UPDATE jobs SET compacted_ms = ?2 WHERE id = ?1", context));
    mark.BindInt(1, id).BindInt(2, now_ms);
    DTRAIN_RETURN_IF_ERROR(mark.Run());
  }
  DTRAIN_RETURN_IF_ERROR(txn.Commit());
  return ids;
}

Status JobStore::SetHeld(int64_t id, bool held) {
  return UpdatePending(id, "UPDATE jobs SET held = ?3 WHERE id = ?1 AND state = ?2", held ? 1 : 0,
                       std::string(held ? "hold " : "release ") + JobLabel(id));
}

Status JobStore::SetPriority(int64_t id, int priority) {
  return UpdatePending(id, "UPDATE jobs SET priority = ?3 WHERE id = ?1 AND state = ?2", priority,
                       "set the priority of " + JobLabel(id));
}

StatusOr<JobRecord> JobStore::Get(int64_t id) const {
  const std::string context = "get " + JobLabel(id);
  std::lock_guard<std::mutex> lock(*reader_mu_);
  DTRAIN_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(
          reader_db_, std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?1", context));
  stmt.BindInt(1, id);
  DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return NotFound(JobLabel(id) + " not found");
  return ReadJob(stmt);
}

StatusOr<std::vector<JobRecord>> JobStore::List(const ListFilter& filter) const {
  const std::string context = "list jobs";
  std::lock_guard<std::mutex> lock(*reader_mu_);
  // Two constant texts, one per order: ORDER BY cannot take a bound direction.
  const std::string where =
      " FROM jobs WHERE (?1 IS NULL OR state = ?1) AND (?4 = '' OR name GLOB ?4) AND "
      "(?5 = '' OR owner = ?5) AND (?6 = 0 OR array_id = ?6) AND ";
  const std::string sql = std::string("SELECT ") + kJobColumns + where +
                          (filter.newest_first ? "(?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3"
                                               : "id > ?2 ORDER BY id LIMIT ?3");
  DTRAIN_ASSIGN_OR_RETURN(Statement stmt, Statement::Prepare(reader_db_, sql, context));
  if (filter.state) {
    stmt.BindText(1, ToString(*filter.state));
  } else {
    stmt.BindNull(1);
  }
  stmt.BindInt(2, filter.after_id)
      .BindInt(3, std::clamp(filter.limit, kMinListLimit, kMaxListLimit))
      .BindText(4, filter.name_glob)
      .BindText(5, filter.owner)
      .BindInt(6, filter.array_id);
  return ReadJobs(stmt);
}

StatusOr<std::vector<JobRecord>> JobStore::Active() const {
  const std::string context = "list active jobs";
  std::lock_guard<std::mutex> lock(*reader_mu_);
  DTRAIN_ASSIGN_OR_RETURN(Statement stmt,
                          Statement::Prepare(reader_db_,
                                             std::string("SELECT ") + kJobColumns +
                                                 " FROM jobs WHERE state IN (?1, ?2) ORDER BY id",
                                             context));
  // The non-terminal states; IsTerminal() is the definition.
  stmt.BindText(1, ToString(JobState::kPending)).BindText(2, ToString(JobState::kRunning));
  return ReadJobs(stmt);
}

StatusOr<std::vector<coordinator::Transition>> JobStore::History(int64_t id) const {
  const std::string context = "read history of " + JobLabel(id);
  std::lock_guard<std::mutex> lock(*reader_mu_);
  DTRAIN_ASSIGN_OR_RETURN(
      Statement stmt,
      Statement::Prepare(reader_db_,
                         "SELECT from_state, to_state, attempt, at_ms, reason FROM transitions "
                         "WHERE job_id = ?1 ORDER BY id",
                         context));
  stmt.BindInt(1, id);
  std::vector<coordinator::Transition> history;
  for (;;) {
    DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    coordinator::Transition t;
    t.job_id = id;
    DTRAIN_ASSIGN_OR_RETURN(t.from, ParseState(stmt.Text(0), id));
    DTRAIN_ASSIGN_OR_RETURN(t.to, ParseState(stmt.Text(1), id));
    t.attempt = static_cast<int>(stmt.Int(2));
    t.at_ms = stmt.Int(3);
    t.reason = stmt.Text(4);
    history.push_back(std::move(t));
  }
  // Every job has its submission transition, so an empty history means an unknown id.
  if (history.empty()) DTRAIN_RETURN_IF_ERROR(CheckExists(reader_db_, id, context));
  return history;
}

StatusOr<int64_t> JobStore::AppendEvent(int64_t id, const std::string& kind,
                                        const std::string& payload, int64_t at_ms) {
  return std::move(AppendEvents({NewEvent{id, kind, payload, at_ms}}).front());
}

std::vector<StatusOr<int64_t>> JobStore::AppendEvents(const std::vector<NewEvent>& events) {
  std::vector<StatusOr<int64_t>> seqs;
  if (events.empty()) return seqs;
  std::vector<PendingWrite> writes(events.size());
  for (size_t i = 0; i < events.size(); ++i) writes[i].event = &events[i];
  SubmitWrites(writes.data(), writes.size());
  seqs.reserve(writes.size());
  for (PendingWrite& w : writes) seqs.push_back(std::move(w.result));
  return seqs;
}

StatusOr<std::vector<JobEvent>> JobStore::EventsAfter(int64_t id, int64_t after_seq,
                                                      int limit) const {
  const std::string context = "read events of " + JobLabel(id);
  std::lock_guard<std::mutex> lock(*reader_mu_);
  DTRAIN_ASSIGN_OR_RETURN(Statement stmt,
                          Statement::Prepare(reader_db_,
                                             "SELECT seq, at_ms, kind, payload FROM events "
                                             "WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                                             context));
  stmt.BindInt(1, id)
      .BindInt(2, after_seq)
      .BindInt(3, std::clamp(limit, kMinListLimit, kMaxListLimit));
  std::vector<JobEvent> events;
  for (;;) {
    DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    JobEvent e;
    e.job_id = id;
    e.seq = stmt.Int(0);
    e.at_ms = stmt.Int(1);
    e.kind = stmt.Text(2);
    e.payload = stmt.Text(3);
    events.push_back(std::move(e));
  }
  // Nothing after `after_seq` is normal for a live job; tell an unknown id apart.
  if (events.empty()) DTRAIN_RETURN_IF_ERROR(CheckExists(reader_db_, id, context));
  return events;
}

StatusOr<int64_t> JobStore::SeqBeforeLast(int64_t id, int64_t count) const {
  const std::string context = "find the last events of " + JobLabel(id);
  std::lock_guard<std::mutex> lock(*reader_mu_);
  DTRAIN_RETURN_IF_ERROR(CheckExists(reader_db_, id, context));
  // The seq of the (count+1)-th newest event; none: every event is among the last `count`.
  DTRAIN_ASSIGN_OR_RETURN(Statement stmt,
                          Statement::Prepare(reader_db_,
                                             "SELECT seq FROM events WHERE job_id = ?1 "
                                             "ORDER BY seq DESC LIMIT 1 OFFSET ?2",
                                             context));
  stmt.BindInt(1, id).BindInt(2, std::max<int64_t>(0, count));
  DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Int(0) : 0;
}

StatusOr<int64_t> JobStore::SeqBeforeTime(int64_t id, int64_t since_ms) const {
  const std::string context = "find the events of " + JobLabel(id) + " since a time";
  std::lock_guard<std::mutex> lock(*reader_mu_);
  DTRAIN_RETURN_IF_ERROR(CheckExists(reader_db_, id, context));
  DTRAIN_ASSIGN_OR_RETURN(Statement stmt,
                          Statement::Prepare(reader_db_,
                                             "SELECT COALESCE(MAX(seq), 0) FROM events "
                                             "WHERE job_id = ?1 AND at_ms < ?2",
                                             context));
  stmt.BindInt(1, id).BindInt(2, since_ms);
  DTRAIN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Int(0) : 0;
}

}  // namespace dtrain::coordinator
