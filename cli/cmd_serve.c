/*
 * cmd_serve.c: `ndtpipe serve` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_serve(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("serve", "this command");
}
