#!/bin/sh
# A plugin that prints a status line and then 1 MiB more.
echo "FLOOD OK - here it comes|lines=1"
yes "a line of output that nobody asked for" | head -c 1048576
exit 0
