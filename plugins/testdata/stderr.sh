#!/bin/sh
# A plugin that fails before printing anything on stdout.
echo "config file /etc/x.conf: no such file" >&2
echo "second line of stderr" >&2
exit 2
