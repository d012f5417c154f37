/*
 * cmd_testbed.c: `ndtpipe testbed` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_testbed(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("testbed", "this command");
}
