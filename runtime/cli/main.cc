// dtrain: the command-line tool of the dtrain coordinator and embedding store (dtrain_main.h).
#include "runtime/cli/dtrain_main.h"

int main(int argc, char** argv) { return dtrain::cli::DtrainMain(argc, argv); }
