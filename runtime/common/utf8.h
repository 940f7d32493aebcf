// UTF-8 validation. Protocol buffer `string` fields must hold valid UTF-8: text that is not (a spec
// saved in Latin-1, a person id with a stray byte) has to be refused where it enters, naming where
// the bad byte is, instead of failing later as an opaque serialization error.
#ifndef DTRAIN_RUNTIME_COMMON_UTF8_H_
#define DTRAIN_RUNTIME_COMMON_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace dtrain {

// The byte offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF), or std::string::npos when `text` is
// valid UTF-8.
size_t FirstInvalidUtf8(std::string_view text);

// "" when valid; else "not UTF-8 text (byte 0xff at line 3, column 7)", lines and columns
// counted from 1 in bytes.
std::string DescribeInvalidUtf8(std::string_view text);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_COMMON_UTF8_H_
