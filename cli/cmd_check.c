/*
 * cmd_check.c: `ndtpipe check` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_check(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("check", "this command");
}
