/*
 * cmd_harmonize.c: `ndtpipe harmonize` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_harmonize(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("harmonize", "this command");
}
