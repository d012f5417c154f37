/*
 * cmd_features.c: `ndtpipe features` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_features(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("features", "this command");
}
