#!/bin/sh
# A plugin that dies by a signal after printing its status.
echo "DOOMED - about to be killed"
kill -KILL $$
