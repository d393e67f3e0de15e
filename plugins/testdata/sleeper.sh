#!/bin/sh
# A plugin that hangs, with a grandchild of the agent that hangs too. It
# writes both pids to $1 so a test can see that both are gone afterwards.
sleep 60 &
echo "$$ $!" > "$1"
echo "SLEEPER OK - about to sleep|started=1"
sleep 60
