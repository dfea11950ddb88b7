# Sourced by the ensure-*.sh scripts: installs Debian packages for the tests and benchmarks.
# apt_install PKG...: as root through apt-get, never starting a service a package brings
# (policy-rc.d says no while it runs: the sandbox starts its own servers, proxies and caches on
# free ports), waiting up to 10 minutes for another apt-get to let go of the dpkg lock.
apt_install() {
  local policy=/usr/sbin/policy-rc.d created=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    created=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local rc=0
  { apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null; } || rc=$?
  if [ -n "$created" ]; then rm -f "$policy"; fi
  return $rc
}

# can_install: root on a machine with apt-get
can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
