// JobStore: the coordinator's SQLite job table, its transitions and per-job event streams.
#include "runtime/coordinator/job_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "runtime/coordinator/launchers/local_mpirun.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace dtrain::coordinator {
namespace {

namespace fs = std::filesystem;

NewJob MakeJob(const std::string& name, int64_t submitted_ms = 1000) {
  NewJob job;
  job.name = name;
  job.spec_yaml = "name: " + name + "\nranks: 2\n";
  job.ranks = 2;
  job.priority = 0;
  job.max_attempts = 3;
  job.submitted_ms = submitted_ms;
  return job;
}

std::unique_ptr<JobStore> OpenOrDie(const std::string& path) {
  StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenOrDie(":memory:");
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override { store_.reset(); }

  int64_t InsertOrDie(const NewJob& job) {
    StatusOr<int64_t> id = store_->Insert(job);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : -1;
  }

  std::string DbPath() const { return temp_.str("jobs.db"); }

  testing::TempDir temp_;  // a fresh directory per test, removed afterwards
  const fs::path& dir_ = temp_.path();
  std::unique_ptr<JobStore> store_;
};

TEST(JobStateTest, NamesRoundTripAndTerminalStates) {
  for (JobState s : {JobState::kPending, JobState::kRunning, JobState::kSucceeded,
                     JobState::kFailed, JobState::kCancelled}) {
    EXPECT_EQ(JobStateFromString(ToString(s)), s);
  }
  EXPECT_STREQ(ToString(JobState::kCancelled), "CANCELLED");
  EXPECT_EQ(JobStateFromString("running"), std::nullopt);
  EXPECT_FALSE(IsTerminal(JobState::kPending));
  EXPECT_FALSE(IsTerminal(JobState::kRunning));
  EXPECT_TRUE(IsTerminal(JobState::kSucceeded));
  EXPECT_TRUE(IsTerminal(JobState::kFailed));
  EXPECT_TRUE(IsTerminal(JobState::kCancelled));
}

TEST_F(JobStoreTest, EmptyPathAndMemoryOpenIndependentInMemoryStores) {
  std::unique_ptr<JobStore> a = OpenOrDie("");
  std::unique_ptr<JobStore> b = OpenOrDie(":memory:");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  StatusOr<int64_t> id = a->Insert(MakeJob("only-in-a"));
  ASSERT_OK(id);
  EXPECT_EQ(b->Get(*id).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(":memory:"));
}

TEST_F(JobStoreTest, InsertAndGetRoundTripEveryField) {
  NewJob job;
  job.name = "resnet-o'brien";
  // Quotes, SQL, newlines, non-ASCII and an embedded NUL all come back byte for byte.
  job.spec_yaml = std::string("name: x\n# '); DROP TABLE jobs; --\nnote: \xc3\xa9t\xc3\xa9\n") +
                  std::string(1, '\0') + "tail";
  job.ranks = 8;
  job.priority = -3;
  job.max_attempts = 4;
  job.submitted_ms = 1700000000123;
  int64_t id = InsertOrDie(job);

  StatusOr<JobRecord> got = store_->Get(id);
  ASSERT_OK(got);
  EXPECT_EQ(got->id, id);
  EXPECT_EQ(got->name, job.name);
  EXPECT_EQ(got->spec_yaml, job.spec_yaml);
  EXPECT_EQ(got->ranks, 8);
  EXPECT_EQ(got->priority, -3);
  EXPECT_EQ(got->max_attempts, 4);
  EXPECT_EQ(got->state, JobState::kPending);
  EXPECT_EQ(got->attempt, 0);
  EXPECT_EQ(got->submitted_ms, 1700000000123);
  EXPECT_EQ(got->started_ms, 0);
  EXPECT_EQ(got->finished_ms, 0);
  EXPECT_EQ(got->reason, "submitted");
  EXPECT_EQ(got->launcher_backend, "");
  EXPECT_EQ(got->launcher_handle, "");
  EXPECT_EQ(got->placement, "");
  EXPECT_EQ(got->failing_rank, -1);
  EXPECT_EQ(got->exit_code, 0);
  EXPECT_EQ(got->signal, 0);
  EXPECT_EQ(got->last_log_lines, "");
  EXPECT_FALSE(got->cancel_requested);

  TransitionUpdate run;
  run.attempt = 1;
  run.started_ms = 1700000001000;
  run.launcher_backend = "kubernetes-mpijob";
  run.launcher_handle = R"({"namespace":"ml","name":"job-1"})";
  run.placement = "node-a:4,node-b:4";
  ASSERT_OK(store_->Transition(id, JobState::kPending, JobState::kRunning, "scheduled",
                               1700000001000, run));
  ASSERT_OK(store_->SetCancelRequested(id));
  TransitionUpdate fail;
  fail.finished_ms = 1700000009000;
  fail.failing_rank = 3;
  fail.exit_code = 137;
  fail.signal = 9;
  fail.last_log_lines = "rank 3: CUDA error: out of memory\nrank 3: aborting\n";
  ASSERT_OK(store_->Transition(id, JobState::kRunning, JobState::kFailed, "rank 3 was killed",
                               1700000009000, fail));

  got = store_->Get(id);
  ASSERT_OK(got);
  EXPECT_EQ(got->state, JobState::kFailed);
  EXPECT_EQ(got->attempt, 1);
  EXPECT_EQ(got->started_ms, 1700000001000);
  EXPECT_EQ(got->finished_ms, 1700000009000);
  EXPECT_EQ(got->reason, "rank 3 was killed");
  EXPECT_EQ(got->launcher_backend, "kubernetes-mpijob");
  EXPECT_EQ(got->launcher_handle, R"({"namespace":"ml","name":"job-1"})");
  EXPECT_EQ(got->placement, "node-a:4,node-b:4");
  EXPECT_EQ(got->failing_rank, 3);
  EXPECT_EQ(got->exit_code, 137);
  EXPECT_EQ(got->signal, 9);
  EXPECT_EQ(got->last_log_lines, *fail.last_log_lines);
  EXPECT_TRUE(got->cancel_requested);
  // Untouched by either transition.
  EXPECT_EQ(got->name, job.name);
  EXPECT_EQ(got->spec_yaml, job.spec_yaml);
  EXPECT_EQ(got->submitted_ms, 1700000000123);
}

TEST_F(JobStoreTest, GetAndSetCancelRequestedOnUnknownIdAreNotFound) {
  StatusOr<JobRecord> got = store_->Get(7);
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(got.status().message(), "job 7 not found");
  Status s = store_->SetCancelRequested(7);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "job 7 not found");
}

TEST_F(JobStoreTest, InsertRejectsNonsenseCounts) {
  NewJob job = MakeJob("bad");
  job.ranks = 0;
  EXPECT_EQ(store_->Insert(job).status().code(), StatusCode::kInvalidArgument);
  job = MakeJob("bad");
  job.max_attempts = 0;
  EXPECT_EQ(store_->Insert(job).status().code(), StatusCode::kInvalidArgument);
}

// Issue 10: jobs.db* were 0644 (world-readable) even in token mode.
TEST_F(JobStoreTest, DatabaseFilesAreOwnerOnlyWhateverTheUmask) {
  const mode_t old_umask = ::umask(0);
  {
    std::unique_ptr<JobStore> store = OpenOrDie(DbPath());
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->Insert(MakeJob("a")));
    for (const std::string suffix : {"", "-wal", "-shm"}) {
      struct stat st;
      if (::stat((DbPath() + suffix).c_str(), &st) != 0) continue;  // -wal/-shm come and go
      EXPECT_EQ(st.st_mode & 0777, 0600u) << "jobs.db" << suffix;
    }
  }
  ::umask(old_umask);
}

TEST_F(JobStoreTest, IdsIncreaseAcrossReopen) {
  std::vector<int64_t> ids;
  {
    std::unique_ptr<JobStore> store = OpenOrDie(DbPath());
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 5; ++i) {
      StatusOr<int64_t> id = store->Insert(MakeJob("job" + std::to_string(i)));
      ASSERT_OK(id);
      ids.push_back(*id);
    }
  }
  std::unique_ptr<JobStore> store = OpenOrDie(DbPath());
  ASSERT_NE(store, nullptr);
  StatusOr<int64_t> id = store->Insert(MakeJob("after-reopen"));
  ASSERT_OK(id);
  ids.push_back(*id);
  EXPECT_GE(ids.front(), 1);
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_GT(ids[i], ids[i - 1]);
  StatusOr<JobRecord> first = store->Get(ids.front());
  ASSERT_OK(first);
  EXPECT_EQ(first->name, "job0");
}

TEST_F(JobStoreTest, ListFiltersByStateAndPagesInIdOrder) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(InsertOrDie(MakeJob("job" + std::to_string(i))));
  for (int i : {1, 4, 5}) {
    ASSERT_OK(store_->Transition(ids[i], JobState::kPending, JobState::kRunning, "go", 2000));
  }
  auto ids_of = [](const std::vector<JobRecord>& jobs) {
    std::vector<int64_t> out;
    for (const JobRecord& j : jobs) out.push_back(j.id);
    return out;
  };

  StatusOr<std::vector<JobRecord>> all = store_->List({});
  ASSERT_OK(all);
  EXPECT_EQ(ids_of(*all), ids);

  ListFilter running;
  running.state = JobState::kRunning;
  StatusOr<std::vector<JobRecord>> r = store_->List(running);
  ASSERT_OK(r);
  EXPECT_EQ(ids_of(*r), (std::vector<int64_t>{ids[1], ids[4], ids[5]}));
  for (const JobRecord& j : *r) EXPECT_EQ(j.state, JobState::kRunning);

  ListFilter pending;
  pending.state = JobState::kPending;
  pending.after_id = ids[2];
  StatusOr<std::vector<JobRecord>> p = store_->List(pending);
  ASSERT_OK(p);
  EXPECT_EQ(ids_of(*p), (std::vector<int64_t>{ids[3], ids[6]}));

  // Pages of 3 cover every job exactly once.
  std::vector<int64_t> paged;
  ListFilter page;
  page.limit = 3;
  for (int n = 0; n < 10; ++n) {
    StatusOr<std::vector<JobRecord>> chunk = store_->List(page);
    ASSERT_OK(chunk);
    if (chunk->empty()) break;
    EXPECT_LE(chunk->size(), 3u);
    for (const JobRecord& j : *chunk) paged.push_back(j.id);
    page.after_id = chunk->back().id;
  }
  EXPECT_EQ(paged, ids);

  ListFilter none;
  none.state = JobState::kCancelled;
  StatusOr<std::vector<JobRecord>> c = store_->List(none);
  ASSERT_OK(c);
  EXPECT_TRUE(c->empty());
}

TEST_F(JobStoreTest, ListClampsLimitToOneThroughAThousand) {
  for (int i = 0; i < 1001; ++i) InsertOrDie(MakeJob("j" + std::to_string(i)));
  ListFilter f;
  f.limit = 0;
  StatusOr<std::vector<JobRecord>> one = store_->List(f);
  ASSERT_OK(one);
  EXPECT_EQ(one->size(), 1u);
  f.limit = -5;
  one = store_->List(f);
  ASSERT_OK(one);
  EXPECT_EQ(one->size(), 1u);
  f.limit = 1000000;
  StatusOr<std::vector<JobRecord>> many = store_->List(f);
  ASSERT_OK(many);
  EXPECT_EQ(many->size(), 1000u);
}

TEST_F(JobStoreTest, TransitionIsCompareAndSet) {
  int64_t id = InsertOrDie(MakeJob("cas"));
  ASSERT_OK(store_->Transition(id, JobState::kPending, JobState::kRunning, "scheduled", 2000));

  // A cancel that still believes the job is PENDING loses.
  Status s = store_->Transition(id, JobState::kPending, JobState::kCancelled, "user", 2500);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "job " + std::to_string(id) + " is RUNNING, not PENDING");

  Status unknown = store_->Transition(42, JobState::kPending, JobState::kRunning, "x", 1);
  EXPECT_EQ(unknown.code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown.message(), "job 42 not found");

  // The losers changed nothing: no state, no history, no event.
  StatusOr<JobRecord> got = store_->Get(id);
  ASSERT_OK(got);
  EXPECT_EQ(got->state, JobState::kRunning);
  EXPECT_EQ(got->reason, "scheduled");
  StatusOr<std::vector<Transition>> history = store_->History(id);
  ASSERT_OK(history);
  EXPECT_EQ(history->size(), 2u);
  StatusOr<std::vector<JobEvent>> events = store_->EventsAfter(id, 0, 100);
  ASSERT_OK(events);
  EXPECT_EQ(events->size(), 2u);

  // Completion after a successful cancel also loses.
  ASSERT_OK(store_->Transition(id, JobState::kRunning, JobState::kCancelled, "user", 3000));
  s = store_->Transition(id, JobState::kRunning, JobState::kSucceeded, "exit 0", 3001);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "job " + std::to_string(id) + " is CANCELLED, not RUNNING");
}

TEST_F(JobStoreTest, ConcurrentTransitionsHaveExactlyOneWinner) {
  std::unique_ptr<JobStore> store = OpenOrDie(DbPath());
  ASSERT_NE(store, nullptr);
  StatusOr<int64_t> id = store->Insert(MakeJob("race"));
  ASSERT_OK(id);
  const JobState targets[] = {JobState::kRunning, JobState::kCancelled, JobState::kFailed,
                              JobState::kSucceeded};
  Status results[4];
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      results[t] = store->Transition(*id, JobState::kPending, targets[t], "racer", 2000 + t);
    });
  }
  for (std::thread& th : threads) th.join();
  int winners = 0;
  JobState winner = JobState::kPending;
  for (int t = 0; t < 4; ++t) {
    if (results[t].ok()) {
      ++winners;
      winner = targets[t];
    } else {
      EXPECT_EQ(results[t].code(), StatusCode::kFailedPrecondition) << results[t].ToString();
    }
  }
  EXPECT_EQ(winners, 1);
  StatusOr<JobRecord> got = store->Get(*id);
  ASSERT_OK(got);
  EXPECT_EQ(got->state, winner);
  StatusOr<std::vector<Transition>> history = store->History(*id);
  ASSERT_OK(history);
  EXPECT_EQ(history->size(), 2u);
}

TEST_F(JobStoreTest, HistoryRecordsEveryTransitionInOrder) {
  int64_t id = InsertOrDie(MakeJob("retry", 1000));
  int64_t other = InsertOrDie(MakeJob("other", 1100));
  TransitionUpdate first;
  first.attempt = 1;
  first.started_ms = 2000;
  ASSERT_OK(
      store_->Transition(id, JobState::kPending, JobState::kRunning, "placed on a:2", 2000, first));
  ASSERT_OK(store_->Transition(other, JobState::kPending, JobState::kCancelled, "user", 2100));
  ASSERT_OK(store_->Transition(id, JobState::kRunning, JobState::kPending,
                               "rank 1 exited with 137; retrying", 3000));
  TransitionUpdate second;
  second.attempt = 2;
  second.started_ms = 4000;
  ASSERT_OK(store_->Transition(id, JobState::kPending, JobState::kRunning, "placed on b:2", 4000,
                               second));
  ASSERT_OK(
      store_->Transition(id, JobState::kRunning, JobState::kSucceeded, "all ranks exited 0", 5000));

  StatusOr<std::vector<Transition>> history = store_->History(id);
  ASSERT_OK(history);
  struct Expected {
    JobState from, to;
    int attempt;
    int64_t at_ms;
    std::string reason;
  };
  const std::vector<Expected> expected = {
      {JobState::kPending, JobState::kPending, 0, 1000, "submitted"},
      {JobState::kPending, JobState::kRunning, 1, 2000, "placed on a:2"},
      {JobState::kRunning, JobState::kPending, 1, 3000, "rank 1 exited with 137; retrying"},
      {JobState::kPending, JobState::kRunning, 2, 4000, "placed on b:2"},
      {JobState::kRunning, JobState::kSucceeded, 2, 5000, "all ranks exited 0"},
  };
  ASSERT_EQ(history->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE("transition " + std::to_string(i));
    const Transition& t = (*history)[i];
    EXPECT_EQ(t.job_id, id);
    EXPECT_EQ(t.from, expected[i].from);
    EXPECT_EQ(t.to, expected[i].to);
    EXPECT_EQ(t.attempt, expected[i].attempt);
    EXPECT_EQ(t.at_ms, expected[i].at_ms);
    EXPECT_EQ(t.reason, expected[i].reason);
  }

  StatusOr<std::vector<Transition>> other_history = store_->History(other);
  ASSERT_OK(other_history);
  ASSERT_EQ(other_history->size(), 2u);
  EXPECT_EQ((*other_history)[1].to, JobState::kCancelled);

  StatusOr<std::vector<Transition>> missing = store_->History(999);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "job 999 not found");
}

TEST_F(JobStoreTest, TransitionUpdatesOnlyTheFieldsItSets) {
  int64_t id = InsertOrDie(MakeJob("partial"));
  TransitionUpdate run;
  run.attempt = 1;
  run.started_ms = 2000;
  run.launcher_backend = "local-mpirun";
  run.launcher_handle = "{}";
  run.placement = "a:2";
  ASSERT_OK(store_->Transition(id, JobState::kPending, JobState::kRunning, "go", 2000, run));

  // Back to PENDING for a retry: clear the handle and placement, keep attempt/started/backend.
  TransitionUpdate requeue;
  requeue.launcher_handle = "";
  requeue.placement = "";
  requeue.exit_code = 1;
  ASSERT_OK(store_->Transition(id, JobState::kRunning, JobState::kPending, "retry", 3000, requeue));

  StatusOr<JobRecord> got = store_->Get(id);
  ASSERT_OK(got);
  EXPECT_EQ(got->state, JobState::kPending);
  EXPECT_EQ(got->reason, "retry");
  EXPECT_EQ(got->attempt, 1);
  EXPECT_EQ(got->started_ms, 2000);
  EXPECT_EQ(got->finished_ms, 0);
  EXPECT_EQ(got->launcher_handle, "");
  EXPECT_EQ(got->placement, "");
  EXPECT_EQ(got->launcher_backend, "local-mpirun");
  EXPECT_EQ(got->failing_rank, -1);
  EXPECT_EQ(got->exit_code, 1);
  EXPECT_EQ(got->signal, 0);
}

TEST_F(JobStoreTest, EventSeqsArePerJobAndEventsAfterResumes) {
  int64_t a = InsertOrDie(MakeJob("a", 1000));
  int64_t b = InsertOrDie(MakeJob("b", 1001));
  // Insert wrote seq 1 ("state" PENDING) for each job; interleaved appends count per job.
  auto append = [&](int64_t id, const std::string& kind, const std::string& payload,
                    int64_t at) -> int64_t {
    StatusOr<int64_t> seq = store_->AppendEvent(id, kind, payload, at);
    EXPECT_TRUE(seq.ok()) << seq.status().ToString();
    return seq.ok() ? *seq : -1;
  };
  EXPECT_EQ(append(a, "log", "a line 1", 1100), 2);
  EXPECT_EQ(append(b, "log", "b line 1", 1101), 2);
  EXPECT_EQ(append(a, "progress", R"({"step":1})", 1200), 3);
  ASSERT_OK(store_->Transition(a, JobState::kPending, JobState::kRunning, "go", 1300));
  EXPECT_EQ(append(a, "log", "a line 2", 1400), 5);
  EXPECT_EQ(append(b, "log", "b line 2", 1401), 3);

  StatusOr<std::vector<JobEvent>> all = store_->EventsAfter(a, 0, 100);
  ASSERT_OK(all);
  const std::vector<std::pair<std::string, std::string>> expected = {{"state", "PENDING"},
                                                                     {"log", "a line 1"},
                                                                     {"progress", R"({"step":1})"},
                                                                     {"state", "RUNNING"},
                                                                     {"log", "a line 2"}};
  ASSERT_EQ(all->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*all)[i].job_id, a);
    EXPECT_EQ((*all)[i].seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ((*all)[i].kind, expected[i].first);
    EXPECT_EQ((*all)[i].payload, expected[i].second);
  }
  EXPECT_EQ((*all)[0].at_ms, 1000);
  EXPECT_EQ((*all)[3].at_ms, 1300);

  // A watcher that saw seq 2 resumes at 3; limit caps the batch.
  StatusOr<std::vector<JobEvent>> resumed = store_->EventsAfter(a, 2, 2);
  ASSERT_OK(resumed);
  ASSERT_EQ(resumed->size(), 2u);
  EXPECT_EQ((*resumed)[0].seq, 3);
  EXPECT_EQ((*resumed)[1].seq, 4);
  StatusOr<std::vector<JobEvent>> rest = store_->EventsAfter(a, (*resumed)[1].seq, 100);
  ASSERT_OK(rest);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].payload, "a line 2");
  StatusOr<std::vector<JobEvent>> caught_up = store_->EventsAfter(a, 5, 100);
  ASSERT_OK(caught_up);
  EXPECT_TRUE(caught_up->empty());

  StatusOr<std::vector<JobEvent>> bs = store_->EventsAfter(b, 0, 0);  // limit clamps to 1
  ASSERT_OK(bs);
  ASSERT_EQ(bs->size(), 1u);
  EXPECT_EQ((*bs)[0].payload, "PENDING");
  bs = store_->EventsAfter(b, 1, 100);
  ASSERT_OK(bs);
  ASSERT_EQ(bs->size(), 2u);
  EXPECT_EQ((*bs)[1].seq, 3);
  EXPECT_EQ((*bs)[1].payload, "b line 2");

  EXPECT_EQ(store_->AppendEvent(77, "log", "x", 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->EventsAfter(77, 0, 10).status().code(), StatusCode::kNotFound);
}

TEST_F(JobStoreTest, ActiveReturnsOnlyNonTerminalJobsInIdOrder) {
  int64_t pending = InsertOrDie(MakeJob("pending"));
  int64_t running = InsertOrDie(MakeJob("running"));
  int64_t succeeded = InsertOrDie(MakeJob("succeeded"));
  int64_t failed = InsertOrDie(MakeJob("failed"));
  int64_t cancelled = InsertOrDie(MakeJob("cancelled"));
  int64_t pending2 = InsertOrDie(MakeJob("pending2"));
  for (int64_t id : {running, succeeded, failed}) {
    ASSERT_OK(store_->Transition(id, JobState::kPending, JobState::kRunning, "go", 2000));
  }
  ASSERT_OK(store_->Transition(succeeded, JobState::kRunning, JobState::kSucceeded, "ok", 3000));
  ASSERT_OK(store_->Transition(failed, JobState::kRunning, JobState::kFailed, "exit 1", 3000));
  ASSERT_OK(store_->Transition(cancelled, JobState::kPending, JobState::kCancelled, "user", 3000));

  StatusOr<std::vector<JobRecord>> active = store_->Active();
  ASSERT_OK(active);
  std::vector<int64_t> ids;
  for (const JobRecord& j : *active) {
    EXPECT_FALSE(IsTerminal(j.state)) << j.name;
    ids.push_back(j.id);
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{pending, running, pending2}));
}

TEST_F(JobStoreTest, OpenFailsNamingThePathWhenTheDirectoryIsMissing) {
  const std::string path = (dir_ / "no-such-dir" / "jobs.db").string();
  StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("'" + path + "'"), std::string::npos)
      << store.status().message();
  EXPECT_NE(store.status().message().find("does not exist"), std::string::npos)
      << store.status().message();
  EXPECT_FALSE(fs::exists(dir_ / "no-such-dir"));
}

TEST_F(JobStoreTest, OpenRejectsAGarbageFileWithoutTouchingIt) {
  const std::string path = DbPath();
  std::string garbage;
  for (int i = 0; i < 200; ++i) garbage += "this is a training log, not a database\n";
  {
    std::ofstream out(path, std::ios::binary);
    out << garbage;
  }
  StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().message(),
            "'" + path + "' is not a dtrain job store: file is not a database");

  std::ifstream in(path, std::ios::binary);
  std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after, garbage);
}

// SQLite's file header: user_version at byte 60, application_id at 68 (big-endian).
uint32_t ReadHeaderWord(const std::string& path, int offset) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(offset);
  unsigned char b[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(b), 4);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

void WriteHeaderWord(const std::string& path, int offset, uint32_t value) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(offset);
  const char b[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                     static_cast<char>(value >> 8), static_cast<char>(value)};
  f.write(b, 4);
}

TEST_F(JobStoreTest, SchemaIsVersionedAndNewerVersionsAreRefused) {
  const std::string path = DbPath();
  {
    std::unique_ptr<JobStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->Insert(MakeJob("v1")));
  }  // closing checkpoints the WAL into the main file
  EXPECT_EQ(ReadHeaderWord(path, 60), 8u);
  EXPECT_EQ(ReadHeaderWord(path, 68), 0x6474726eu);  // "dtrn"
  {
    std::unique_ptr<JobStore> again = OpenOrDie(path);  // no migration the second time
    ASSERT_NE(again, nullptr);
    StatusOr<std::vector<JobRecord>> jobs = again->List({});
    ASSERT_OK(jobs);
    EXPECT_EQ(jobs->size(), 1u);
  }

  WriteHeaderWord(path, 60, 99);
  StatusOr<std::unique_ptr<JobStore>> newer = JobStore::Open(path);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(newer.status().message().find("schema version 99"), std::string::npos)
      << newer.status().message();

  WriteHeaderWord(path, 60, 3);
  WriteHeaderWord(path, 68, 0x12345678);
  StatusOr<std::unique_ptr<JobStore>> foreign = JobStore::Open(path);
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.status().message().find("is not a dtrain job store"), std::string::npos)
      << foreign.status().message();
}

// ----------------------------------------------------------------------------- schema 1 -> 2

// The schema exactly as dtrain created it at schema version 1 (its kMigrations[0]), so that the
// migration is tested on a database written by that code, not by this one.
constexpr char kSchemaVersion1[] = R"sql(
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
PRAGMA user_version = 1;
)sql";

// Runs `sql` on a new or existing database file, as a version-1 coordinator would have.
void ExecOnFile(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
            SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close_v2(db);
}

// SQL text of a string literal ('it''s').
std::string Quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

TEST_F(JobStoreTest, Version1StoreMigratesToLauncherHandlesTheLocalLauncherFollows) {
  // A job that a version-1 coordinator started and left running: a live process (standing in
  // for the job's shim) and its attempt directory with output so far.
  const fs::path attempt = dir_ / "state" / "jobs" / "1" / "attempt-2";
  fs::create_directories(attempt);
  { std::ofstream(attempt / "output.log") << "epoch 1/3\n{\"event\":\"step\",\"step\":5}\n"; }
  SpawnOptions spawn;
  spawn.argv = {"/bin/sleep", "30"};
  spawn.output_path = (dir_ / "sleep.log").string();
  StatusOr<ProcessIdentity> shim = Spawn(spawn);
  ASSERT_OK(shim);
  const std::string log_path = (attempt / "output.log").string();
  // A finished job whose paths need quoting both in SQL and in JSON.
  const std::string odd_log = "/old state/it's \"odd\"\\/jobs/3/attempt-1/output.log";

  const std::string path = DbPath();
  ExecOnFile(path,
             std::string(kSchemaVersion1) +
                 "INSERT INTO jobs (name, spec_yaml, ranks, priority, max_attempts, state, "
                 "attempt, submitted_ms, started_ms, reason, launcher_pid, launcher_start_time, "
                 "placement, log_path) VALUES ('train', 'name: train\n', 2, 1, 3, 'RUNNING', 2, "
                 "1000, 2000, 'started attempt 2 on localhost:2', " +
                 std::to_string(shim->pid) + ", " + std::to_string(shim->start_time) +
                 ", 'localhost:2', " + Quoted(log_path) +
                 ");"
                 "INSERT INTO jobs (name, spec_yaml, ranks, priority, max_attempts, state, "
                 "submitted_ms, reason) VALUES ('queued', 'name: queued\n', 1, 0, 1, 'PENDING', "
                 "1500, 'submitted');"
                 "INSERT INTO jobs (name, spec_yaml, ranks, priority, max_attempts, state, "
                 "attempt, submitted_ms, started_ms, finished_ms, reason, launcher_pid, "
                 "launcher_start_time, placement, log_path, exit_code, last_log_lines) VALUES "
                 "('done', 'name: done\n', 1, 0, 1, 'FAILED', 1, 500, 600, 700, "
                 "'rank 0 exited with code 3', 777, 888, 'localhost:1', " +
                 Quoted(odd_log) +
                 ", 1, 'boom\n');"
                 "INSERT INTO transitions (job_id, from_state, to_state, attempt, at_ms, reason) "
                 "VALUES (1, 'PENDING', 'PENDING', 0, 1000, 'submitted'), "
                 "(1, 'PENDING', 'RUNNING', 2, 2000, 'started attempt 2 on localhost:2');"
                 "INSERT INTO events (job_id, seq, at_ms, kind, payload) VALUES "
                 "(1, 1, 1000, 'state', 'PENDING'), (1, 2, 2000, 'state', 'RUNNING');");
  EXPECT_EQ(ReadHeaderWord(path, 60), 1u);

  {
    std::unique_ptr<JobStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    StatusOr<JobRecord> running = store->Get(1);
    ASSERT_OK(running);
    EXPECT_EQ(running->state, JobState::kRunning);
    EXPECT_EQ(running->attempt, 2);
    EXPECT_EQ(running->placement, "localhost:2");
    EXPECT_EQ(running->reason, "started attempt 2 on localhost:2");
    EXPECT_EQ(running->launcher_backend, "local-mpirun");
    const LaunchedJob launched{running->launcher_backend, running->launcher_handle};
    StatusOr<LocalJobHandle> handle = LocalJobHandle::Decode(launched);
    ASSERT_OK(handle);
    EXPECT_EQ(handle->shim.pid, shim->pid);
    EXPECT_EQ(handle->shim.start_time, shim->start_time);
    EXPECT_EQ(handle->log_path, log_path);
    EXPECT_EQ(handle->exit_path, (attempt / "exit").string());

    // The local launcher follows it from the migrated handle alone, as after any restart.
    LocalMpirunLauncher launcher(LocalMpirunOptions{});
    StatusOr<std::optional<ExitReport>> polled = launcher.Poll(launched);
    ASSERT_OK(polled);
    EXPECT_FALSE(polled->has_value()) << "the job is still running";
    StatusOr<LogChunk> output = launcher.ReadLog(launched, 0, 1 << 16);
    ASSERT_OK(output);
    EXPECT_EQ(output->data, "epoch 1/3\n{\"event\":\"step\",\"step\":5}\n");
    ASSERT_OK(WriteExitFile(handle->exit_path, 0, 0));  // what its shim writes as it ends
    polled = launcher.Poll(launched);
    ASSERT_OK(polled);
    ASSERT_TRUE(polled->has_value());
    EXPECT_TRUE((*polled)->succeeded());
    EXPECT_OK(launcher.Stop(launched, std::chrono::milliseconds(1000)));
    EXPECT_FALSE(IsAlive(*shim));

    StatusOr<JobRecord> queued = store->Get(2);
    ASSERT_OK(queued);
    EXPECT_EQ(queued->launcher_backend, "");  // never started: nothing to convert
    EXPECT_EQ(queued->launcher_handle, "");

    StatusOr<JobRecord> done = store->Get(3);
    ASSERT_OK(done);
    EXPECT_EQ(done->state, JobState::kFailed);
    EXPECT_EQ(done->exit_code, 1);
    EXPECT_EQ(done->last_log_lines, "boom\n");
    handle = LocalJobHandle::Decode({done->launcher_backend, done->launcher_handle});
    ASSERT_OK(handle);
    EXPECT_EQ(handle->shim.pid, 777);
    EXPECT_EQ(handle->shim.start_time, 888);
    EXPECT_EQ(handle->log_path, odd_log);
    EXPECT_EQ(handle->exit_path, "/old state/it's \"odd\"\\/jobs/3/attempt-1/exit");

    StatusOr<std::vector<Transition>> history = store->History(1);
    ASSERT_OK(history);
    ASSERT_EQ(history->size(), 2u);
    EXPECT_EQ((*history)[1].to, JobState::kRunning);
    StatusOr<std::vector<JobEvent>> events = store->EventsAfter(1, 0, 10);
    ASSERT_OK(events);
    EXPECT_EQ(events->size(), 2u);
    // The store goes on as a version-2 one: ids continue, events continue per job.
    StatusOr<int64_t> next = store->Insert(MakeJob("after"));
    ASSERT_OK(next);
    EXPECT_EQ(*next, 4);
    StatusOr<int64_t> seq = store->AppendEvent(1, "log", "epoch 2/3", 3000);
    ASSERT_OK(seq);
    EXPECT_EQ(*seq, 3);
    StatusOr<std::vector<JobRecord>> active = store->Active();
    ASSERT_OK(active);
    EXPECT_EQ(active->size(), 3u);
  }
  EXPECT_EQ(ReadHeaderWord(path, 60), 8u);
  // The pid-shaped columns are gone, so nothing can keep reading them.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_NE(sqlite3_prepare_v2(db, "SELECT launcher_pid FROM jobs", -1, &stmt, nullptr), SQLITE_OK);
  sqlite3_finalize(stmt);
  sqlite3_close_v2(db);
}

// ----------------------------------------------------------------------------- schema 2 -> 3

// The 1 -> 2 step exactly as shipped (kMigrations[1]): with kSchemaVersion1 it makes the schema
// a version-2 coordinator created.
constexpr char kMigration1To2[] = R"sql(
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
PRAGMA user_version = 2;
)sql";

// Issue 10 item 2: the signal that killed the failing rank is kept (version 3 adds rank_signal).
TEST_F(JobStoreTest, Version2StoreMigratesAndKeepsTheSignalThatKilledTheFailingRank) {
  const std::string path = DbPath();
  ExecOnFile(path, std::string(kSchemaVersion1) + kMigration1To2 +
                       "INSERT INTO jobs (name, spec_yaml, ranks, priority, max_attempts, state, "
                       "attempt, submitted_ms, started_ms, finished_ms, reason, placement, "
                       "failing_rank, exit_code, signal, last_log_lines) VALUES ('old', "
                       "'name: old\n', 2, 0, 1, 'FAILED', 1, 500, 600, 700, "
                       "'mpirun exited with code 137', 'localhost:2', -1, 137, 0, 'boom\n');"
                       "INSERT INTO jobs (name, spec_yaml, ranks, priority, max_attempts, state, "
                       "submitted_ms, reason) VALUES ('running', 'name: running\n', 2, 0, 1, "
                       "'RUNNING', 800, 'started');");
  ASSERT_EQ(ReadHeaderWord(path, 60), 2u);
  {
    std::unique_ptr<JobStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    StatusOr<JobRecord> old = store->Get(1);
    ASSERT_OK(old);
    EXPECT_EQ(old->state, JobState::kFailed);
    EXPECT_EQ(old->reason, "mpirun exited with code 137");
    EXPECT_EQ(old->exit_code, 137);
    EXPECT_EQ(old->last_log_lines, "boom\n");
    EXPECT_EQ(old->rank_signal, 0);  // not known for jobs that ended before

    TransitionUpdate update;
    update.failing_rank = 1;
    update.exit_code = 137;
    update.rank_signal = 9;
    ASSERT_OK(store->Transition(2, JobState::kRunning, JobState::kFailed,
                                "rank 1 on host vm was killed by signal 9", 900, update));
  }
  EXPECT_EQ(ReadHeaderWord(path, 60), 8u);
  std::unique_ptr<JobStore> reopened = OpenOrDie(path);
  ASSERT_NE(reopened, nullptr);
  StatusOr<JobRecord> killed = reopened->Get(2);
  ASSERT_OK(killed);
  EXPECT_EQ(killed->failing_rank, 1);
  EXPECT_EQ(killed->rank_signal, 9);
  EXPECT_EQ(killed->exit_code, 137);
  EXPECT_EQ(killed->reason, "rank 1 on host vm was killed by signal 9");
}

// ----------------------------------------------------------------------------- schema 4 -> 5

// The 2 -> 3 and 3 -> 4 steps exactly as shipped: with kSchemaVersion1 and kMigration1To2 they
// make the schema a version-4 coordinator created (before holds, dependencies and owners).
constexpr char kMigration2To4[] = R"sql(
ALTER TABLE jobs ADD COLUMN rank_signal INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN output_dir TEXT NOT NULL DEFAULT '';
PRAGMA user_version = 4;
)sql";

// Issue 16: a store written before holds, dependencies and owners opens; its jobs are unheld,
// depend on nothing, have no owner, and can be held, released and re-prioritised.
TEST_F(JobStoreTest, Version4StoreMigratesToHoldsDependenciesAndOwners) {
  const std::string path = DbPath();
  ExecOnFile(path, std::string(kSchemaVersion1) + kMigration1To2 + kMigration2To4 +
                       "INSERT INTO jobs (name, spec_yaml, ranks, priority, max_attempts, state, "
                       "submitted_ms, reason, output_dir) VALUES ('queued', 'name: queued\n', 2, "
                       "5, 1, 'PENDING', 800, 'submitted', '');"
                       "INSERT INTO jobs (name, spec_yaml, ranks, priority, max_attempts, state, "
                       "submitted_ms, reason, output_dir) VALUES ('done', 'name: done\n', 1, 0, 1, "
                       "'SUCCEEDED', 700, 'all ranks exited with code 0', '/runs/done');");
  ASSERT_EQ(ReadHeaderWord(path, 60), 4u);
  {
    std::unique_ptr<JobStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    StatusOr<JobRecord> queued = store->Get(1);
    ASSERT_OK(queued);
    EXPECT_FALSE(queued->held);
    EXPECT_TRUE(queued->after.empty());
    EXPECT_EQ(queued->owner, "");
    EXPECT_EQ(queued->priority, 5);
    StatusOr<JobRecord> done = store->Get(2);
    ASSERT_OK(done);
    EXPECT_EQ(done->output_dir, "/runs/done");
    EXPECT_EQ(done->cancel_reason, "");  // schema 7: why a job was stopped when not by its user
    ASSERT_OK(store->SetHeld(1, true));
    ASSERT_OK(store->SetPriority(1, -7));
    NewJob next = MakeJob("next");
    next.after = {2, 1};
    next.owner = "alice";
    ASSERT_OK(store->Insert(next));
  }
  EXPECT_EQ(ReadHeaderWord(path, 60), 8u);
  std::unique_ptr<JobStore> reopened = OpenOrDie(path);
  ASSERT_NE(reopened, nullptr);
  StatusOr<JobRecord> queued = reopened->Get(1);
  ASSERT_OK(queued);
  EXPECT_TRUE(queued->held);
  EXPECT_EQ(queued->priority, -7);
  StatusOr<JobRecord> next = reopened->Get(3);
  ASSERT_OK(next);
  EXPECT_EQ(next->after, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(next->owner, "alice");
  // Schema 7's additions work on the migrated store too.
  ASSERT_OK(reopened->SetCancelRequested(1, "stopped early (ASHA) at epoch 1: ..."));
  StatusOr<JobRecord> stopped = reopened->Get(1);
  ASSERT_OK(stopped);
  EXPECT_TRUE(stopped->cancel_requested);
  EXPECT_EQ(stopped->cancel_reason, "stopped early (ASHA) at epoch 1: ...");
  EarlyStoppingRule rule;
  rule.metric = "eval.accuracy";
  ASSERT_OK(reopened->SetEarlyStopping(3, rule));
  ASSERT_OK(reopened->RecordRungResult(3, 1, 3, 0.5));
}

TEST_F(JobStoreTest, HoldReleaseAndPriorityApplyToPendingJobsOnly) {
  NewJob job = MakeJob("held");
  job.held = true;
  job.owner = "bob";
  const int64_t id = InsertOrDie(job);
  StatusOr<JobRecord> got = store_->Get(id);
  ASSERT_OK(got);
  EXPECT_TRUE(got->held);
  ASSERT_OK(store_->SetHeld(id, false));
  ASSERT_OK(store_->SetPriority(id, 42));
  got = store_->Get(id);
  ASSERT_OK(got);
  EXPECT_FALSE(got->held);
  EXPECT_EQ(got->priority, 42);
  // Not a state change: the history keeps only the submission.
  StatusOr<std::vector<Transition>> history = store_->History(id);
  ASSERT_OK(history);
  EXPECT_EQ(history->size(), 1u);

  // A hold that a start beat ends with PENDING: a RUNNING job is never shown held.
  ASSERT_OK(store_->SetHeld(id, true));
  ASSERT_OK(store_->Transition(id, JobState::kPending, JobState::kRunning, "started", 2000));
  got = store_->Get(id);
  ASSERT_OK(got);
  EXPECT_FALSE(got->held);

  Status refused = store_->SetHeld(id, true);
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("job " + std::to_string(id) + " is RUNNING"), std::string::npos)
      << refused.message();
  EXPECT_EQ(store_->SetPriority(id, 1).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->SetHeld(9999, true).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->SetPriority(9999, 1).code(), StatusCode::kNotFound);
}

TEST_F(JobStoreTest, TheFirstElementOfAnArrayNamesItAndListFiltersByIt) {
  NewJob first = MakeJob("trial");
  first.array_index = 0;
  const int64_t array = InsertOrDie(first);
  InsertOrDie(MakeJob("outsider"));
  NewJob second = MakeJob("trial");
  second.array_id = array;
  second.array_index = 1;
  const int64_t id2 = InsertOrDie(second);
  StatusOr<JobRecord> got = store_->Get(array);
  ASSERT_OK(got);
  EXPECT_EQ(got->array_id, array);
  EXPECT_EQ(got->array_index, 0);
  got = store_->Get(id2);
  ASSERT_OK(got);
  EXPECT_EQ(got->array_id, array);
  EXPECT_EQ(got->array_index, 1);
  ListFilter filter;
  filter.array_id = array;
  StatusOr<std::vector<JobRecord>> listed = store_->List(filter);
  ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].id, id2);
  StatusOr<JobRecord> outsider = store_->Get(array + 1);
  ASSERT_OK(outsider);
  EXPECT_EQ(outsider->array_id, 0);
}

TEST_F(JobStoreTest, ListFiltersByOwner) {
  for (const char* owner : {"alice", "bob", "alice", ""}) {
    NewJob job = MakeJob("j");
    job.owner = owner;
    InsertOrDie(job);
  }
  ListFilter filter;
  filter.owner = "alice";
  StatusOr<std::vector<JobRecord>> alice = store_->List(filter);
  ASSERT_OK(alice);
  ASSERT_EQ(alice->size(), 2u);
  EXPECT_EQ((*alice)[0].id, 1);
  EXPECT_EQ((*alice)[1].id, 3);
  filter.owner = "carol";
  StatusOr<std::vector<JobRecord>> none = store_->List(filter);
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
  StatusOr<std::vector<JobRecord>> all = store_->List({});
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 4u);
}

// Reads exactly n bytes; false on EOF or error.
bool ReadFull(int fd, void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t got = ::read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

// What the child reports after each call returns.
struct Ack {
  int64_t id;
  int64_t stage;  // kInserted, kStarted, or kError
};
constexpr int64_t kInserted = 1;
constexpr int64_t kStarted = 2;
constexpr int64_t kError = -1;

[[noreturn]] void InsertUntilKilled(const std::string& path, int fd) {
  auto send = [fd](int64_t id, int64_t stage) {
    Ack ack{id, stage};
    if (::write(fd, &ack, sizeof(ack)) != static_cast<ssize_t>(sizeof(ack))) ::_exit(3);
  };
  StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
  if (!store.ok()) {
    send(0, kError);
    ::_exit(2);
  }
  for (int i = 1;; ++i) {
    StatusOr<int64_t> id = (*store)->Insert(MakeJob("durable-" + std::to_string(i), i));
    if (!id.ok()) {
      send(0, kError);
      ::_exit(2);
    }
    send(*id, kInserted);
    TransitionUpdate update;
    update.attempt = 1;
    update.started_ms = 10000 + i;
    if (!(*store)
             ->Transition(*id, JobState::kPending, JobState::kRunning, "started", 10000 + i, update)
             .ok()) {
      send(*id, kError);
      ::_exit(2);
    }
    send(*id, kStarted);
  }
}

TEST_F(JobStoreTest, AcknowledgedJobsSurviveSigkill) {
  constexpr int kAckedInserts = 25;
  const std::string path = DbPath();
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    InsertUntilKilled(path, fds[1]);
  }
  ::close(fds[1]);
  std::set<int64_t> inserted, started;
  bool child_error = false;
  while (static_cast<int>(inserted.size()) < kAckedInserts) {
    Ack ack;
    if (!ReadFull(fds[0], &ack, sizeof(ack))) break;
    if (ack.stage == kError) {
      child_error = true;
      break;
    }
    (ack.stage == kInserted ? inserted : started).insert(ack.id);
  }
  // Killed right after the child's kAckedInserts-th Insert returned, most likely mid-write.
  ::kill(pid, SIGKILL);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ::close(fds[0]);
  ASSERT_FALSE(child_error) << "the child's store call failed";
  ASSERT_EQ(static_cast<int>(inserted.size()), kAckedInserts);
  EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);

  std::unique_ptr<JobStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  for (int64_t id : inserted) {
    SCOPED_TRACE("job " + std::to_string(id));
    StatusOr<JobRecord> job = store->Get(id);
    ASSERT_OK(job);
    StatusOr<std::vector<Transition>> history = store->History(id);
    ASSERT_OK(history);
    if (started.count(id)) {
      EXPECT_EQ(job->state, JobState::kRunning);
      EXPECT_EQ(job->attempt, 1);
    }
    // Whatever did reach the disk is whole: state, history and events agree.
    const size_t expected = job->state == JobState::kRunning ? 2u : 1u;
    ASSERT_EQ(history->size(), expected);
    EXPECT_EQ(history->back().to, job->state);
    StatusOr<std::vector<JobEvent>> events = store->EventsAfter(id, 0, 100);
    ASSERT_OK(events);
    ASSERT_EQ(events->size(), expected);
    EXPECT_EQ(events->back().payload, ToString(job->state));
  }
  // Jobs beyond the acknowledged ones may or may not be there, but never half-written.
  StatusOr<std::vector<JobRecord>> all = store->List({});
  ASSERT_OK(all);
  EXPECT_GE(all->size(), inserted.size());
  for (const JobRecord& j : *all) {
    StatusOr<std::vector<Transition>> history = store->History(j.id);
    ASSERT_OK(history);
    EXPECT_FALSE(history->empty());
    EXPECT_EQ(history->back().to, j.state);
  }
}

TEST_F(JobStoreTest, ConcurrentInsertsGetUniqueIdsAndAllLand) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 40;
  std::unique_ptr<JobStore> store = OpenOrDie(DbPath());
  ASSERT_NE(store, nullptr);
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        StatusOr<int64_t> id =
            store->Insert(MakeJob("t" + std::to_string(t) + "-" + std::to_string(i)));
        if (id.ok()) {
          ids[t].push_back(*id);
        } else {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  std::set<int64_t> unique;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[t], 0) << "thread " << t;
    // Each thread sees its own ids increase.
    EXPECT_TRUE(std::is_sorted(ids[t].begin(), ids[t].end()));
    unique.insert(ids[t].begin(), ids[t].end());
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));

  StatusOr<std::vector<JobRecord>> all = store->List({std::nullopt, 0, 1000});
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), unique.size());
  std::set<std::string> names;
  for (const JobRecord& j : *all) {
    EXPECT_EQ(unique.count(j.id), 1u);
    names.insert(j.name);
    StatusOr<std::vector<JobEvent>> events = store->EventsAfter(j.id, 0, 10);
    ASSERT_OK(events);
    EXPECT_EQ(events->size(), 1u);
  }
  EXPECT_EQ(names.size(), unique.size());
}

// Polls the group-commit queue until `ready` holds (the test's own wait; the store never polls).
bool WaitForQueue(const JobStore& store,
                  const std::function<bool(const JobStore::WriteQueueStats&)>& ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready(store.GetWriteQueueStats())) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

// A second, raw connection to the store's file: to add a trigger and to hold the write lock.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errstr(rc);
  }
  ~RawConnection() { sqlite3_close_v2(db_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error != nullptr ? error : "");
    sqlite3_free(error);
    return rc == SQLITE_OK;
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST_F(JobStoreTest, LoneCallerCommitsAloneWithoutWaitingForCompany) {
  for (int i = 0; i < 5; ++i) InsertOrDie(MakeJob("solo" + std::to_string(i)));
  JobStore::WriteQueueStats stats = store_->GetWriteQueueStats();
  EXPECT_EQ(stats.batches, 5);
  EXPECT_EQ(stats.writes, 5);
  EXPECT_EQ(stats.largest_batch, 1);
  EXPECT_EQ(stats.fallbacks, 0);
  EXPECT_EQ(stats.queued, 0);
  EXPECT_EQ(stats.in_flight, 0);
}

TEST_F(JobStoreTest, GroupCommittedInsertsEachReturnTheirOwnJob) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 50;
  constexpr int kTotal = kThreads * kPerThread;
  std::unique_ptr<JobStore> store = OpenOrDie(DbPath());
  ASSERT_NE(store, nullptr);
  // Per thread, in call order: (name, returned id or -1).
  std::vector<std::vector<std::pair<std::string, int64_t>>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        NewJob job = MakeJob("g" + std::to_string(t) + "-" + std::to_string(i), 1000 * t + i);
        job.priority = t;
        StatusOr<int64_t> id = store->Insert(job);
        got[t].emplace_back(job.name, id.ok() ? *id : -1);
      }
    });
  }
  for (std::thread& th : threads) th.join();

  std::set<int64_t> unique;
  for (int t = 0; t < kThreads; ++t) {
    std::vector<int64_t> ids;
    for (const auto& [name, id] : got[t]) {
      ASSERT_GT(id, 0) << name << " failed";
      ids.push_back(id);
    }
    // Queue order is call order, so each thread's ids increase.
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << "thread " << t;
    unique.insert(ids.begin(), ids.end());
  }
  ASSERT_EQ(unique.size(), static_cast<size_t>(kTotal));

  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const auto& [name, id] = got[t][i];
      SCOPED_TRACE(name);
      StatusOr<JobRecord> job = store->Get(id);
      ASSERT_OK(job);
      EXPECT_EQ(job->name, name);  // the id handed back is the caller's own job
      EXPECT_EQ(job->spec_yaml, "name: " + name + "\nranks: 2\n");
      EXPECT_EQ(job->priority, t);
      EXPECT_EQ(job->submitted_ms, 1000 * t + i);
      EXPECT_EQ(job->state, JobState::kPending);
      StatusOr<std::vector<Transition>> history = store->History(id);
      ASSERT_OK(history);
      ASSERT_EQ(history->size(), 1u);
      EXPECT_EQ((*history)[0].reason, "submitted");
      EXPECT_EQ((*history)[0].at_ms, 1000 * t + i);
      StatusOr<std::vector<JobEvent>> events = store->EventsAfter(id, 0, 10);
      ASSERT_OK(events);
      ASSERT_EQ(events->size(), 1u);
      EXPECT_EQ((*events)[0].seq, 1);
      EXPECT_EQ((*events)[0].payload, "PENDING");
    }
  }
  StatusOr<std::vector<JobRecord>> all = store->List({std::nullopt, 0, 1000});
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), static_cast<size_t>(kTotal));

  JobStore::WriteQueueStats stats = store->GetWriteQueueStats();
  EXPECT_EQ(stats.writes, kTotal);
  EXPECT_LE(stats.batches, kTotal);
  EXPECT_LE(stats.largest_batch, static_cast<int64_t>(JobStore::kMaxWritesPerBatch));
  EXPECT_EQ(stats.fallbacks, 0);
  EXPECT_EQ(stats.queued, 0);
  std::cout << "[ info     ] " << kTotal << " inserts in " << stats.batches
            << " transactions, largest batch " << stats.largest_batch << "\n";
}

TEST_F(JobStoreTest, GroupCommittedAppendsGetContiguousSeqs) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::unique_ptr<JobStore> store = OpenOrDie(DbPath());
  ASSERT_NE(store, nullptr);
  int64_t jobs[2];
  for (int64_t& id : jobs) {
    StatusOr<int64_t> inserted = store->Insert(MakeJob("appends"));
    ASSERT_OK(inserted);
    id = *inserted;
  }
  // Per thread: (job, seq, payload).
  std::vector<std::vector<std::tuple<int64_t, int64_t, std::string>>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int64_t job = jobs[t % 2];
        const std::string payload = "t" + std::to_string(t) + " line " + std::to_string(i);
        StatusOr<int64_t> seq = store->AppendEvent(job, "log", payload, 5000 + i);
        got[t].emplace_back(job, seq.ok() ? *seq : -1, payload);
      }
    });
  }
  for (std::thread& th : threads) th.join();

  std::map<int64_t, std::map<int64_t, std::string>> by_job;  // job -> seq -> payload
  for (int t = 0; t < kThreads; ++t) {
    int64_t last = 0;
    for (const auto& [job, seq, payload] : got[t]) {
      ASSERT_GT(seq, last) << payload;  // failed (-1) or out of call order
      last = seq;
      EXPECT_TRUE(by_job[job].emplace(seq, payload).second) << "seq " << seq << " twice";
    }
  }
  for (int64_t job : jobs) {
    SCOPED_TRACE("job " + std::to_string(job));
    StatusOr<std::vector<JobEvent>> events = store->EventsAfter(job, 1, 1000);
    ASSERT_OK(events);
    const size_t expected = static_cast<size_t>(kThreads / 2 * kPerThread);
    ASSERT_EQ(events->size(), expected);
    ASSERT_EQ(by_job[job].size(), expected);
    int64_t seq = 2;  // 1 is the "state" event of the insert
    for (const JobEvent& e : *events) {
      EXPECT_EQ(e.seq, seq++);
      EXPECT_EQ(e.payload, by_job[job][e.seq]);  // each caller got the seq of its own event
    }
  }
}

// The requests that reach the transaction together: a shared transaction that fails part-way is
// rolled back and every request retried alone, so only the bad ones fail, each with its own
// status. A trigger added by a second connection makes one insert fail inside the transaction
// (the schema has no CHECK that a NewJob could violate); an append to an unknown job fails
// inside it too.
TEST_F(JobStoreTest, AFailingRequestInABatchFailsAloneAndTheOthersCommit) {
  const std::string path = DbPath();
  std::unique_ptr<JobStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  StatusOr<int64_t> seed = store->Insert(MakeJob("seed"));
  ASSERT_OK(seed);
  RawConnection raw(path);
  ASSERT_TRUE(
      raw.Exec("CREATE TRIGGER refuse_poison BEFORE INSERT ON jobs WHEN NEW.name = 'poison' "
               "BEGIN SELECT RAISE(ABORT, 'jobs named poison are refused'); END"));

  // Alone, the poisoned insert fails with the trigger's message and leaves nothing behind.
  StatusOr<int64_t> alone = store->Insert(MakeJob("poison"));
  EXPECT_EQ(alone.status().code(), StatusCode::kInvalidArgument) << alone.status().ToString();
  EXPECT_NE(alone.status().message().find("jobs named poison are refused"), std::string::npos)
      << alone.status().message();

  // Hold the write lock, so that the next leader waits in BEGIN IMMEDIATE while the rest queue.
  ASSERT_TRUE(raw.Exec("BEGIN IMMEDIATE"));
  const JobStore::WriteQueueStats before = store->GetWriteQueueStats();
  struct Call {
    std::string what;
    std::function<StatusOr<int64_t>()> run;
    StatusOr<int64_t> result = Internal("not run");
  };
  std::vector<Call> calls;
  auto insert = [&](const std::string& name) {
    calls.push_back({"insert " + name, [&store, name] { return store->Insert(MakeJob(name)); }});
  };
  auto append = [&](int64_t id, const std::string& payload) {
    calls.push_back({"append " + payload,
                     [&store, id, payload] { return store->AppendEvent(id, "log", payload, 7); }});
  };
  insert("blocker");  // leads a batch of one and waits for the lock
  insert("a");        // the rest queue in this order behind it, and go as one batch
  insert("poison");
  append(*seed, "x");
  append(9999, "lost");
  insert("b");
  append(*seed, "y");
  insert("c");
  std::vector<std::thread> threads;
  bool in_order = true;
  for (size_t i = 0; i < calls.size() && in_order; ++i) {
    threads.emplace_back([&calls, i] { calls[i].result = calls[i].run(); });
    const int64_t queued = static_cast<int64_t>(i);
    in_order = WaitForQueue(*store, [&](const JobStore::WriteQueueStats& s) {
      return s.in_flight == 1 && s.queued == queued;
    });
    EXPECT_TRUE(in_order) << "waiting for " << calls[i].what << " to queue";
  }
  // Validation happens before queueing: a bad request never reaches the batch.
  NewJob no_ranks = MakeJob("no-ranks");
  no_ranks.ranks = 0;
  EXPECT_EQ(store->Insert(no_ranks).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->GetWriteQueueStats().queued, static_cast<int64_t>(calls.size() - 1));

  const bool committed = raw.Exec("COMMIT");
  for (std::thread& th : threads) th.join();
  ASSERT_TRUE(committed && in_order);

  std::map<std::string, StatusOr<int64_t>> results;
  for (const Call& c : calls) results.emplace(c.what, c.result);
  for (const char* ok :
       {"insert blocker", "insert a", "insert b", "insert c", "append x", "append y"}) {
    EXPECT_TRUE(results.at(ok).ok()) << ok << ": " << results.at(ok).status().ToString();
  }
  const Status& poison = results.at("insert poison").status();
  EXPECT_EQ(poison.code(), StatusCode::kInvalidArgument) << poison.ToString();
  EXPECT_NE(poison.message().find("insert job 'poison'"), std::string::npos) << poison.message();
  EXPECT_NE(poison.message().find("jobs named poison are refused"), std::string::npos)
      << poison.message();
  const Status& lost = results.at("append lost").status();
  EXPECT_EQ(lost.code(), StatusCode::kNotFound) << lost.ToString();
  EXPECT_EQ(lost.message(), "job 9999 not found");

  // Ids follow queue order; the appends got the next seqs of the seed job, in queue order.
  ASSERT_TRUE(results.at("insert c").ok());
  EXPECT_LT(*results.at("insert blocker"), *results.at("insert a"));
  EXPECT_LT(*results.at("insert a"), *results.at("insert b"));
  EXPECT_LT(*results.at("insert b"), *results.at("insert c"));
  EXPECT_EQ(*results.at("append x"), 2);
  EXPECT_EQ(*results.at("append y"), 3);

  const JobStore::WriteQueueStats after = store->GetWriteQueueStats();
  EXPECT_EQ(after.batches - before.batches, 2);  // the blocker alone, then the other seven
  EXPECT_EQ(after.largest_batch, static_cast<int64_t>(calls.size() - 1));
  EXPECT_EQ(after.fallbacks - before.fallbacks, 1);

  // Every good request landed whole, each under the id its caller got; the poison left nothing.
  StatusOr<std::vector<JobRecord>> all = store->List({});
  ASSERT_OK(all);
  std::vector<std::string> names;
  for (const JobRecord& j : *all) {
    names.push_back(j.name);
    StatusOr<std::vector<Transition>> history = store->History(j.id);
    ASSERT_OK(history);
    EXPECT_EQ(history->size(), 1u) << j.name;
    if (j.name != "seed") {
      EXPECT_EQ(*results.at("insert " + j.name), j.id);
      StatusOr<std::vector<JobEvent>> events = store->EventsAfter(j.id, 0, 10);
      ASSERT_OK(events);
      EXPECT_EQ(events->size(), 1u) << j.name;
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{"seed", "blocker", "a", "b", "c"}));
  StatusOr<std::vector<JobEvent>> seed_events = store->EventsAfter(*seed, 0, 10);
  ASSERT_OK(seed_events);
  ASSERT_EQ(seed_events->size(), 3u);
  EXPECT_EQ((*seed_events)[1].payload, "x");
  EXPECT_EQ((*seed_events)[2].payload, "y");
}

// The control loop commits the transitions of one pass together: one batch, no fallback, and a
// refused compare-and-set (or an unknown id) fails alone while the others land.
TEST_F(JobStoreTest, TransitionsCommitTogetherAndARefusedOneDoesNotStopTheOthers) {
  std::unique_ptr<JobStore> store = OpenOrDie(DbPath());
  ASSERT_NE(store, nullptr);
  int64_t ids[3];
  for (int64_t& id : ids) {
    StatusOr<int64_t> inserted = store->Insert(MakeJob("t"));
    ASSERT_OK(inserted);
    id = *inserted;
  }
  ASSERT_OK(store->Transition(ids[1], JobState::kPending, JobState::kCancelled, "user", 2000));
  const JobStore::WriteQueueStats before = store->GetWriteQueueStats();
  std::vector<TransitionRequest> requests;
  for (int64_t id : {ids[0], ids[1], ids[2], int64_t{9999}}) {
    TransitionRequest t;
    t.id = id;
    t.expected_from = JobState::kPending;
    t.to = JobState::kRunning;
    t.reason = "started";
    t.at_ms = 3000;
    t.update.attempt = 1;
    t.update.placement = "localhost:2";
    requests.push_back(t);
  }
  std::vector<Status> statuses = store->Transitions(requests);
  ASSERT_EQ(statuses.size(), 4u);
  EXPECT_TRUE(statuses[0].ok()) << statuses[0].ToString();
  EXPECT_EQ(statuses[1].code(), StatusCode::kFailedPrecondition) << statuses[1].ToString();
  EXPECT_EQ(statuses[1].message(), "job " + std::to_string(ids[1]) + " is CANCELLED, not PENDING");
  EXPECT_TRUE(statuses[2].ok()) << statuses[2].ToString();
  EXPECT_EQ(statuses[3].code(), StatusCode::kNotFound) << statuses[3].ToString();
  const JobStore::WriteQueueStats after = store->GetWriteQueueStats();
  EXPECT_EQ(after.batches - before.batches, 1);
  EXPECT_EQ(after.fallbacks, before.fallbacks);

  for (int64_t id : {ids[0], ids[2]}) {
    StatusOr<JobRecord> job = store->Get(id);
    ASSERT_OK(job);
    EXPECT_EQ(job->state, JobState::kRunning);
    EXPECT_EQ(job->attempt, 1);
    EXPECT_EQ(job->placement, "localhost:2");
    StatusOr<std::vector<JobEvent>> events = store->EventsAfter(id, 0, 10);
    ASSERT_OK(events);
    ASSERT_EQ(events->size(), 2u);
    EXPECT_EQ(events->back().payload, "RUNNING");
  }
  StatusOr<JobRecord> refused = store->Get(ids[1]);
  ASSERT_OK(refused);
  EXPECT_EQ(refused->state, JobState::kCancelled);
  StatusOr<std::vector<Transition>> history = store->History(ids[1]);
  ASSERT_OK(history);
  EXPECT_EQ(history->size(), 2u);  // submitted, cancelled: the refused one left no row
}

TEST_F(JobStoreTest, AppendEventsCommitsAPassInOneBatchInOrder) {
  std::unique_ptr<JobStore> store = OpenOrDie(DbPath());
  ASSERT_NE(store, nullptr);
  StatusOr<int64_t> a = store->Insert(MakeJob("a"));
  StatusOr<int64_t> b = store->Insert(MakeJob("b"));
  ASSERT_OK(a);
  ASSERT_OK(b);
  const JobStore::WriteQueueStats before = store->GetWriteQueueStats();
  std::vector<NewEvent> events = {{*a, "log", "a1", 10},
                                  {*b, "log", "b1", 11},
                                  {*a, "progress", "{\"event\":\"step\"}", 12},
                                  {4242, "log", "nobody", 13},
                                  {*b, "log", "b2", 14}};
  std::vector<StatusOr<int64_t>> seqs = store->AppendEvents(events);
  ASSERT_EQ(seqs.size(), events.size());
  EXPECT_EQ(*seqs[0], 2);
  EXPECT_EQ(*seqs[1], 2);
  EXPECT_EQ(*seqs[2], 3);
  EXPECT_EQ(seqs[3].status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*seqs[4], 3);
  EXPECT_EQ(store->GetWriteQueueStats().batches - before.batches, 1);
  StatusOr<std::vector<JobEvent>> got = store->EventsAfter(*b, 1, 10);
  ASSERT_OK(got);
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].payload, "b1");
  EXPECT_EQ((*got)[1].payload, "b2");
}

// Reads use their own connection: they see the last commit and do not wait for a writer that
// holds the write lock (here: a leader stuck in BEGIN IMMEDIATE behind another connection).
TEST_F(JobStoreTest, ReadsDoNotWaitBehindAWriter) {
  const std::string path = DbPath();
  std::unique_ptr<JobStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  StatusOr<int64_t> first = store->Insert(MakeJob("first"));
  ASSERT_OK(first);
  RawConnection raw(path);
  ASSERT_TRUE(raw.Exec("BEGIN IMMEDIATE"));
  StatusOr<int64_t> blocked = Internal("not run");
  std::thread writer([&] { blocked = store->Insert(MakeJob("blocked")); });
  ASSERT_TRUE(
      WaitForQueue(*store, [](const JobStore::WriteQueueStats& s) { return s.in_flight == 1; }));
  StatusOr<JobRecord> read = store->Get(*first);
  StatusOr<std::vector<JobRecord>> listed = store->List({});
  // The writer is still waiting for the lock: the reads above did not queue behind it.
  EXPECT_EQ(store->GetWriteQueueStats().in_flight, 1);
  ASSERT_TRUE(raw.Exec("COMMIT"));
  writer.join();
  ASSERT_OK(read);
  EXPECT_EQ(read->name, "first");
  ASSERT_OK(listed);
  EXPECT_EQ(listed->size(), 1u);
  ASSERT_OK(blocked);
  StatusOr<JobRecord> after = store->Get(*blocked);  // a read after the commit sees it
  ASSERT_OK(after);
  EXPECT_EQ(after->name, "blocked");
}

// Issue 18 item 5: retention removes old finished jobs' events, not the jobs or their history.
TEST_F(JobStoreTest, CompactFinishedDropsOldFinishedJobsEventsAndKeepsTheirHistory) {
  NewJob job;
  job.name = "j";
  job.spec_yaml = "name: j\n";
  job.submitted_ms = 1000;
  const int64_t old_done = InsertOrDie(job);
  const int64_t new_done = InsertOrDie(job);
  const int64_t running = InsertOrDie(job);
  const int64_t queued = InsertOrDie(job);
  for (int64_t id : {old_done, new_done, running}) {
    ASSERT_OK(store_->Transition(id, JobState::kPending, JobState::kRunning, "started", 2000));
    StatusOr<int64_t> log = store_->AppendEvent(id, "log", "epoch 1", 2100);
    ASSERT_OK(log);
    StatusOr<int64_t> progress = store_->AppendEvent(id, "progress", R"({"event":"step"})", 2200);
    ASSERT_OK(progress);
  }
  TransitionUpdate last;
  last.last_log_lines = "the end\n";
  ASSERT_OK(
      store_->Transition(old_done, JobState::kRunning, JobState::kSucceeded, "done", 3000, last));
  ASSERT_OK(store_->Transition(new_done, JobState::kRunning, JobState::kFailed, "boom", 9000));
  StatusOr<std::vector<JobEvent>> before = store_->EventsAfter(old_done, 0, 100);
  ASSERT_OK(before);
  const int64_t last_seq = before->back().seq;

  // A queued job cancelled has its time too (it gave none): retention goes by it.
  ASSERT_OK(store_->Transition(queued, JobState::kPending, JobState::kCancelled, "by user", 9500));
  EXPECT_EQ(store_->Get(queued)->finished_ms, 9500);
  // Finished before 5000: only the first.
  StatusOr<std::vector<int64_t>> compacted = store_->CompactFinished(5000, 10, 6000);
  ASSERT_OK(compacted);
  EXPECT_EQ(*compacted, std::vector<int64_t>({old_done}));
  StatusOr<std::vector<JobEvent>> after = store_->EventsAfter(old_done, 0, 100);
  ASSERT_OK(after);
  ASSERT_EQ(after->size(), 1u);  // only the note, after every removed event
  EXPECT_EQ(after->front().kind, "log");
  EXPECT_GT(after->front().seq, last_seq);
  EXPECT_NE(after->front().payload.find("removed by the coordinator's retention at "
                                        "1970-01-01T00:00:06Z"),
            std::string::npos)
      << after->front().payload;
  StatusOr<JobRecord> kept = store_->Get(old_done);
  ASSERT_OK(kept);
  EXPECT_EQ(kept->state, JobState::kSucceeded);
  EXPECT_EQ(kept->compacted_ms, 6000);
  EXPECT_EQ(kept->last_log_lines, "the end\n");
  StatusOr<std::vector<coordinator::Transition>> history = store_->History(old_done);
  ASSERT_OK(history);
  EXPECT_EQ(history->size(), 3u);  // submitted, started, finished
  // The others keep everything; a second pass finds nothing more; the limit holds.
  for (int64_t id : {new_done, running, queued}) {
    StatusOr<JobRecord> other = store_->Get(id);  // finished after 5000, or not at all
    ASSERT_OK(other);
    EXPECT_EQ(other->compacted_ms, 0);
  }
  EXPECT_EQ(store_->EventsAfter(running, 0, 100)->size(), 4u);
  compacted = store_->CompactFinished(5000, 10, 7000);
  ASSERT_OK(compacted);
  EXPECT_TRUE(compacted->empty());
  compacted = store_->CompactFinished(10000, 0, 7000);
  ASSERT_OK(compacted);
  EXPECT_TRUE(compacted->empty());
  compacted = store_->CompactFinished(10000, 10, 7000);
  ASSERT_OK(compacted);
  EXPECT_EQ(*compacted, std::vector<int64_t>({new_done, queued}));
}

}  // namespace
}  // namespace dtrain::coordinator
