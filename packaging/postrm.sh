#!/bin/sh
# etcd-gateway's postrm: tell systemd the unit is gone.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
