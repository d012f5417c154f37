/*
 * cmd_broker.c: `ndtpipe broker` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_broker(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("broker", "this command");
}
