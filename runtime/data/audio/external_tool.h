// Runs a program of a Debian package (espeak-ng, flite, sox) with an argv, never a shell, so
// words and paths are passed as they are.
#ifndef DTRAIN_RUNTIME_DATA_AUDIO_EXTERNAL_TOOL_H_
#define DTRAIN_RUNTIME_DATA_AUDIO_EXTERNAL_TOOL_H_

#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace dtrain::data {

// Runs argv[0] (looked up on PATH) with stdout and stderr discarded and waits for it. Not
// found: FAILED_PRECONDITION naming `package`; a non-zero exit or a signal: INTERNAL naming the
// command line.
Status RunExternalTool(const std::vector<std::string>& argv, const std::string& package);

}  // namespace dtrain::data

#endif  // DTRAIN_RUNTIME_DATA_AUDIO_EXTERNAL_TOOL_H_
