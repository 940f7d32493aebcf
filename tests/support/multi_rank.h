// For tests run under mpirun (tests/support/mpi_test_main.cc is their main): a communicator over
// MPI_COMM_WORLD and a fixture whose temporary directory every rank shares.
#ifndef DTRAIN_TESTS_SUPPORT_MULTI_RANK_H_
#define DTRAIN_TESTS_SUPPORT_MULTI_RANK_H_

#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "runtime/comm/mpi_communicator.h"

namespace dtrain::testing {

// Long enough for a slow CI machine, short enough that a hang fails the test.
constexpr std::chrono::milliseconds kMultiRankTestTimeout{120000};

inline std::unique_ptr<comm::MpiCommunicator> MakeWorldComm() {
  auto c = comm::MpiCommunicator::Create(MPI_COMM_WORLD, kMultiRankTestTimeout);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

// comm_ spans every rank; root_ is one directory all ranks see (named after rank 0's pid, so
// concurrent test binaries do not collide), created by rank 0 before any rank uses it and
// removed by rank 0 after all ranks are done.
class MultiRankTest : public ::testing::Test {
 protected:
  explicit MultiRankTest(std::string prefix = "dtrain_mpi_test") : prefix_(std::move(prefix)) {}

  void SetUp() override {
    comm_ = MakeWorldComm();
    ASSERT_NE(comm_, nullptr);
    int64_t id = ::getpid();
    ASSERT_TRUE(comm_->Broadcast({&id, 1, comm::DataType::kInt64}, 0).ok());
    root_ = std::filesystem::temp_directory_path() / (prefix_ + "_" + std::to_string(id));
    if (comm_->rank() == 0) std::filesystem::create_directories(root_);
    ASSERT_TRUE(comm_->Barrier().ok());
  }
  void TearDown() override {
    if (comm_ == nullptr) return;
    (void)comm_->Barrier();
    std::error_code ec;
    if (comm_->rank() == 0) std::filesystem::remove_all(root_, ec);
  }

  std::unique_ptr<comm::MpiCommunicator> comm_;
  std::filesystem::path root_;

 private:
  std::string prefix_;
};

}  // namespace dtrain::testing

#endif  // DTRAIN_TESTS_SUPPORT_MULTI_RANK_H_
