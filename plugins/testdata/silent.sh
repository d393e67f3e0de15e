#!/bin/sh
# A plugin that prints nothing at all.
exit 0
