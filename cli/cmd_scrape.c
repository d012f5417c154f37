/*
 * cmd_scrape.c: `ndtpipe scrape` (not built yet; see the issue tracker).
 */
#include "cli/cli.h"

int cli_cmd_scrape(int argc, char **argv)
{
    NDT_UNUSED(argc);
    NDT_UNUSED(argv);
    return cli_not_built("scrape", "this command");
}
