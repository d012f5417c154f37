/*
 * cmd_train.c: `ndtpipe train` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_train(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("train", "this command");
}
