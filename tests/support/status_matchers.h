// ASSERT_OK / EXPECT_OK for Status and StatusOr<T>: on failure they print the expression and the
// status, so a failing test says what went wrong instead of "Value of: s.ok()".
#ifndef DTRAIN_TESTS_SUPPORT_STATUS_MATCHERS_H_
#define DTRAIN_TESTS_SUPPORT_STATUS_MATCHERS_H_

#include <gtest/gtest.h>

#include "runtime/common/status.h"

namespace dtrain::testing {

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const StatusOr<T>& s) {
  return s.status();
}

}  // namespace dtrain::testing

#define DTRAIN_STATUS_CHECK_(check, expr)                                            \
  do {                                                                               \
    const auto& dtrain_checked_ = (expr);                                            \
    check(::dtrain::testing::StatusOf(dtrain_checked_).ok())                         \
        << #expr << ": " << ::dtrain::testing::StatusOf(dtrain_checked_).ToString(); \
  } while (0)

#define ASSERT_OK(expr) DTRAIN_STATUS_CHECK_(ASSERT_TRUE, expr)
#define EXPECT_OK(expr) DTRAIN_STATUS_CHECK_(EXPECT_TRUE, expr)

#endif  // DTRAIN_TESTS_SUPPORT_STATUS_MATCHERS_H_
