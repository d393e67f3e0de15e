#!/bin/sh
# A plugin with an exit code Nagios does not define.
echo "WEIRD - exit code 4 ahead|x=4"
exit 4
