/*
 * cmd_run.c: `ndtpipe run` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_run(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("run", "this command");
}
