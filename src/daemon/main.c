/*
 * main.c: irohds-daemon's entry point.  Everything lives in cli.c (commands)
 * and server.c (the daemon), so this file only hands over argv.
 */
#include "daemon/cli.h"

int main(int argc, char **argv)
{
    return irohds_cli_main(argc, argv);
}
