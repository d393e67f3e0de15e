#!/bin/sh
# A plugin that shows its environment and directory.
echo "ENV OK - IMMUNE_TEST=$IMMUNE_TEST"
pwd
