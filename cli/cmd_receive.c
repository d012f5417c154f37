/*
 * cmd_receive.c: `ndtpipe receive` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_receive(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("receive", "this command");
}
