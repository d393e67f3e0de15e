#!/bin/sh
# Runs after the package is installed or upgraded: the unprivileged user
# the daemons run as, and the directories they own. Config and state from
# an earlier version are left as they are.
set -e
if ! getent group immune >/dev/null; then
	groupadd --system immune
fi
if ! getent passwd immune >/dev/null; then
	useradd --system --gid immune --home-dir /var/lib/immune --no-create-home --shell /usr/sbin/nologin \
		--comment "immune monitoring agent and coordinator" immune
fi
for dir in /etc/immune /srv/immune; do
	install -d -o root -g immune -m 0750 "$dir"
done
chown root:immune /etc/immune/*.yaml 2>/dev/null || true
chmod 0640 /etc/immune/*.yaml 2>/dev/null || true
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
fi
