#!/bin/sh
# etcd-gateway's postinst: tell systemd about the unit. The service is not
# enabled or started: edit /etc/etcd-gateway.yaml first, then
#   systemctl enable --now etcd-gateway
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
