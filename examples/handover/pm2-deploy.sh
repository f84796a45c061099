#!/bin/sh
# A deploy with pm2 (fork mode) that loses no connection
# (examples/handover/ecosystem.config.js, docs/handover.md): starts whichever
# of app-blue and app-green is stopped; it takes over from the other, which
# exits by itself. The first run starts app-blue.
#
#   sh examples/handover/pm2-deploy.sh            # first start, then each deploy
#
# Never `pm2 start` (or restart, or reload) the entry that is serving: pm2
# restarts it, stopping it before the new one starts, and connections are
# refused meanwhile.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# pm2's pid of an entry: 0 when stopped or unknown (a daemon that starts
# now prints its banner first).
pid_of() {
  pid=$(pm2 pid "$1" 2>/dev/null | tail -n 1)
  case "$pid" in
    '' | *[!0-9]*) echo 0 ;;
    *) echo "$pid" ;;
  esac
}
blue=$(pid_of app-blue)
green=$(pid_of app-green)
if [ "$blue" -gt 0 ] && [ "$green" -gt 0 ]; then
  echo "app-blue ($blue) and app-green ($green) both run: the last deploy's old process is still finishing its connections; deploy again once it has exited" >&2
  exit 1
elif [ "$blue" -gt 0 ]; then
  next=app-green
else
  next=app-blue
fi
pm2 start "$here/ecosystem.config.js" --only "$next"
