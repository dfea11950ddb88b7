#!/usr/bin/env bash
# Makes sure a MariaDB (or MySQL) server binary is there for the sandbox. As root on a
# Debian/Ubuntu machine it installs mariadb-server through apt-get, without starting its
# service (the sandbox starts its own servers on free ports).
set -euo pipefail
source "$(dirname "$0")/_apt.sh"
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if have mariadbd && have mariadb-install-db; then exit 0; fi
if have mysqld && ! have mariadbd; then exit 0; fi
if ! can_install; then
  echo "ezctl: no MariaDB server found; install it first: sudo apt-get install mariadb-server" >&2
  exit 2
fi
echo "ezctl: installing mariadb-server through apt-get (its service is not started)" >&2
apt_install mariadb-server mariadb-client
echo "ezctl: $(/usr/sbin/mariadbd --version)" >&2
