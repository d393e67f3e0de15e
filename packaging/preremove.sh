#!/bin/sh
# Runs before the package is removed: stop the daemon it holds. An upgrade
# restarts it from the new package instead.
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl stop "$DPKG_MAINTSCRIPT_PACKAGE.service" >/dev/null 2>&1 || true
fi
