/*
 * cmd_report.c: `ndtpipe report` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_report(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("report", "this command");
}
