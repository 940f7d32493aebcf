// UTF-8 validation (RFC 3629): what protocol buffer strings accept.
#include "runtime/common/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace dtrain {
namespace {

TEST(Utf8Test, ValidTextHasNoInvalidByte) {
  for (const std::string s : {"", "plain ascii", "été", "日本語", "emoji \xf0\x9f\x98\x80",
                              "\xf4\x8f\xbf\xbf" /* U+10FFFF */, "\xed\x9f\xbf" /* U+D7FF */}) {
    EXPECT_EQ(FirstInvalidUtf8(s), std::string::npos) << s;
    EXPECT_EQ(DescribeInvalidUtf8(s), "") << s;
  }
}

TEST(Utf8Test, EveryKindOfMalformedSequenceIsFound) {
  EXPECT_EQ(FirstInvalidUtf8("ab\xff"), 2u);                 // never valid
  EXPECT_EQ(FirstInvalidUtf8("\x80"), 0u);                   // lone continuation
  EXPECT_EQ(FirstInvalidUtf8("a\xc3"), 1u);                  // truncated
  EXPECT_EQ(FirstInvalidUtf8("\xc0\xaf"), 0u);               // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("\xe0\x80\xaf"), 0u);           // overlong, 3 bytes
  EXPECT_EQ(FirstInvalidUtf8("\xed\xa0\x80"), 0u);           // surrogate U+D800
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x90\x80\x80"), 0u);       // above U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8("\xe6\x97\x41"), 0u);           // bad third byte
  EXPECT_EQ(FirstInvalidUtf8("\xc3\xa9t\xc3\xa9\xfe"), 5u);  // after valid multi-byte text
}

TEST(Utf8Test, DescriptionNamesByteLineAndColumn) {
  EXPECT_EQ(DescribeInvalidUtf8("line one\nab\xffz"),
            "not UTF-8 text (byte 0xff at line 2, column 3)");
}

}  // namespace
}  // namespace dtrain
