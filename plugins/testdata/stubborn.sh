#!/bin/sh
# A plugin that ignores SIGTERM, as do its children (an ignored signal
# stays ignored across fork and exec), so only SIGKILL ends the group.
trap '' TERM
sleep 60 &
echo "$$ $!" > "$1"
sleep 60
