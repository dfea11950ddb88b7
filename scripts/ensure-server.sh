#!/usr/bin/env bash
# Makes sure a MariaDB (or MySQL) server binary is there for the sandbox. As root on a
# Debian/Ubuntu machine it installs mariadb-server through apt-get, without starting its
# service (the sandbox starts its own servers on free ports).
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if have mariadbd && have mariadb-install-db; then exit 0; fi
if have mysqld && ! have mariadbd; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ezctl: no MariaDB server found; install it first: sudo apt-get install mariadb-server" >&2
  exit 2
fi
echo "ezctl: installing mariadb-server through apt-get (its service is not started)" >&2
policy=/usr/sbin/policy-rc.d
created=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created=1
fi
cleanup() { if [ -n "$created" ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq mariadb-server mariadb-client >/dev/null
echo "ezctl: $(/usr/sbin/mariadbd --version)" >&2
