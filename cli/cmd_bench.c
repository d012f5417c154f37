/*
 * cmd_bench.c: `ndtpipe bench` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_bench(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("bench", "this command");
}
