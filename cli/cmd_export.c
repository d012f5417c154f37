/*
 * cmd_export.c: `ndtpipe export` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_export(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("export", "this command");
}
