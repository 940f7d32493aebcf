// The `dtrain` program as a function, so that a binary with more tasks registered (tests, tools)
// runs exactly dtrain's command line after its own registrations.
#ifndef DTRAIN_RUNTIME_CLI_DTRAIN_MAIN_H_
#define DTRAIN_RUNTIME_CLI_DTRAIN_MAIN_H_

namespace dtrain::cli {

// Parses the command line and runs the command; returns the exit code (see `dtrain --help`).
int DtrainMain(int argc, char** argv);

}  // namespace dtrain::cli

#endif  // DTRAIN_RUNTIME_CLI_DTRAIN_MAIN_H_
