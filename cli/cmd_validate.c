/*
 * cmd_validate.c: `ndtpipe validate` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_validate(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("validate", "this command");
}
