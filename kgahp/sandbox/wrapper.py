"""The fixed POSIX shell scripts that run inside the pod, and the framing they speak.

The scripts never contain job data: they are run as `sh -c SCRIPT NAME CMD ARGS...`, so the job's
arguments reach the payload verbatim through `"$@"`, and configuration comes from KGAHP_* variables
(removed again before the payload starts). Needs `sh`, `tar`, `base64` (or `openssl`) and
`sha256sum` (or `shasum`/`openssl`) in the job image; `gzip` and `cmp` are used when present.

Output frame written on the container's stdout (= its log) after the payload exits:

    KGAHP-OUTPUT-BEGIN 1 <archive bytes> <sha256 hex or -> <tar|tgz|empty>
    <base64 of the archive, any line length>
    KGAHP-OUTPUT-END

or a single `KGAHP-OUTPUT-TOO-LARGE <bytes> <limit>` / `KGAHP-OUTPUT-ERROR <reason>` line.
Before it (and alone in shared mode), the CPU the job used:

    KGAHP-CPU 1 cgroup2 <user> <system> usec | cgroup1 <user> <system> nsec|tick
    KGAHP-CPU 1 times <shell user> <shell sys>        (e.g. 0m0.01s; `times` output:)
    <children user> <children sys>                    (the payload and all it waited for)
"""

from __future__ import annotations

BEGIN = "KGAHP-OUTPUT-BEGIN"
END = "KGAHP-OUTPUT-END"
TOO_LARGE = "KGAHP-OUTPUT-TOO-LARGE"
ERROR = "KGAHP-OUTPUT-ERROR"
FRAME_VERSION = "1"
CPU = "KGAHP-CPU"

WRAPPER_NAME = "kgahp-wrapper"
STAGE_IN_NAME = "kgahp-stage-in"

# Run the payload in the working directory with the three streams redirected, forward SIGTERM
# (the kubelet's stop signal) to it, and leave its status in $rc (128+s after death by signal s).
# Out == Err shares one open file, as HTCondor does. A stream that cannot be opened leaves rc=127
# and a message on the container log; the API script still returns what exists.
_RUN = r"""
cd "$KGAHP_SANDBOX" || { echo "kgahp-wrapper: cannot enter $KGAHP_SANDBOX" >&2; exit 127; }
kg_in=${KGAHP_STDIN:-/dev/null}
kg_out=${KGAHP_STDOUT:-/dev/null}
kg_err=${KGAHP_STDERR:-/dev/null}
rc=127
if ! command exec 5<"$kg_in"; then
  echo "kgahp-wrapper: cannot read the job's stdin $kg_in" >&2
elif ! command exec 3>"$kg_out"; then
  echo "kgahp-wrapper: cannot write the job's stdout $kg_out" >&2
elif ! { { [ "$kg_err" = "$kg_out" ] && command exec 4>&3; } || command exec 4>"$kg_err"; }; then
  echo "kgahp-wrapper: cannot write the job's stderr $kg_err" >&2
else
  (
    unset KGAHP_SANDBOX KGAHP_STDIN KGAHP_STDOUT KGAHP_STDERR KGAHP_OUTPUTS \
          KGAHP_OUTPUTS_DEFAULT KGAHP_MAX_OUTPUT KGAHP_INPUT
    exec "$@"
  ) <&5 >&3 2>&4 3>&- 4>&- 5<&- &
  kg_child=$!
  exec 3>&- 4>&- 5<&-
  trap 'kill -TERM "$kg_child" 2>/dev/null' TERM HUP
  wait "$kg_child"; rc=$?
  # wait returns early when a trapped signal arrives: keep waiting for the real status
  while kill -0 "$kg_child" 2>/dev/null; do wait "$kg_child"; rc=$?; done
  trap - TERM HUP
fi
"""

# After the payload: one line on the container log with the CPU the job used, read before the
# wrapper packs anything. The container's own cgroup first (v2 cpu.stat, microseconds; v1
# cpuacct, nanoseconds or USER_HZ ticks), else the shell's `times` (the wrapper and every child
# it waited for). kgahp turns it into RemoteUserCpu/RemoteSysCpu (outputs.cpu_usage).
CGROUP_ROOT = "/sys/fs/cgroup"
_CPU = r"""
kg_u=; kg_s=
if [ -r /sys/fs/cgroup/cpu.stat ]; then
  while read -r kg_k kg_v; do
    case $kg_k in user_usec) kg_u=$kg_v;; system_usec) kg_s=$kg_v;; esac
  done </sys/fs/cgroup/cpu.stat
fi
if [ -n "$kg_u" ] && [ -n "$kg_s" ]; then
  echo "KGAHP-CPU 1 cgroup2 $kg_u $kg_s usec"
else
  for kg_d in /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpu,cpuacct; do
    if [ -r "$kg_d/cpuacct.usage_user" ] && [ -r "$kg_d/cpuacct.usage_sys" ]; then
      read -r kg_u <"$kg_d/cpuacct.usage_user"; read -r kg_s <"$kg_d/cpuacct.usage_sys"
      [ -n "$kg_u" ] && [ -n "$kg_s" ] && { echo "KGAHP-CPU 1 cgroup1 $kg_u $kg_s nsec"; break; }
    fi
    if [ -r "$kg_d/cpuacct.stat" ]; then
      while read -r kg_k kg_v; do
        case $kg_k in user) kg_u=$kg_v;; system) kg_s=$kg_v;; esac
      done <"$kg_d/cpuacct.stat"
      [ -n "$kg_u" ] && [ -n "$kg_s" ] && { echo "KGAHP-CPU 1 cgroup1 $kg_u $kg_s tick"; break; }
    fi
  done
  # `times` in this shell, not in a $(...) subshell (whose children are none): two lines
  if [ -z "$kg_u" ] || [ -z "$kg_s" ]; then printf 'KGAHP-CPU 1 times '; times; fi
fi
"""

# Shared mode: Out/Err are written in place on the shared volume; only the CPU line is left.
SHARED_SCRIPT = "set -u\n" + _RUN + _CPU + 'exit "$rc"\n'

# API mode: after the payload, pack the streams and outputs into one framed archive on stdout.
API_SCRIPT = "set -u\nmkdir -p \"$KGAHP_SANDBOX/.kgahp\" 2>/dev/null\n" + _RUN + _CPU + r"""
kg_max=${KGAHP_MAX_OUTPUT:-0}; kg_in_dir=${KGAHP_INPUT:-/nonexistent}
kg_default=${KGAHP_OUTPUTS_DEFAULT:-}; kg_list=${KGAHP_OUTPUTS:-}
set --
for f in .kgahp/stdout .kgahp/stderr; do [ -f "$f" ] && set -- "$@" "$f"; done
if [ -n "$kg_default" ]; then
  # HTCondor's default: new or modified regular files at the top of the sandbox
  for f in * .[!.]* ..?*; do
    { [ -f "$f" ] && [ ! -L "$f" ]; } || continue
    if [ -f "$kg_in_dir/s/$f" ] && cmp -s "$f" "$kg_in_dir/s/$f" 2>/dev/null; then continue; fi
    set -- "$@" "$f"
  done
else
  kg_ifs=$IFS; IFS='
'
  set -f
  for f in $kg_list; do { [ -e "$f" ] || [ -L "$f" ]; } && set -- "$@" "$f"; done
  set +f; IFS=$kg_ifs
fi
mkdir -p .kgahp 2>/dev/null   # in case the payload removed it
kg_tar=.kgahp/output.archive
command -v tar >/dev/null 2>&1 || {
  echo "KGAHP-OUTPUT-ERROR no tar in the job image"; exit "$rc"; }
command -v base64 >/dev/null 2>&1 || command -v openssl >/dev/null 2>&1 || {
  echo "KGAHP-OUTPUT-ERROR no base64 or openssl in the job image"; exit "$rc"; }
if [ "$#" -eq 0 ]; then
  kg_enc=empty; : >"$kg_tar"
elif command -v gzip >/dev/null 2>&1 && tar -czf "$kg_tar" -- "$@" 2>.kgahp/tar.err; then
  kg_enc=tgz
elif tar -cf "$kg_tar" -- "$@" 2>.kgahp/tar.err; then
  kg_enc=tar
else
  echo "KGAHP-OUTPUT-ERROR tar failed: $(head -n 1 .kgahp/tar.err 2>/dev/null)"; exit "$rc"
fi
kg_size=$(($(wc -c <"$kg_tar")))
if [ "$kg_max" -gt 0 ] && [ "$kg_size" -gt "$kg_max" ]; then
  echo "KGAHP-OUTPUT-TOO-LARGE $kg_size $kg_max"; rm -f "$kg_tar"; exit "$rc"
fi
kg_sum=$( { sha256sum <"$kg_tar" || shasum -a 256 <"$kg_tar" \
           || openssl dgst -sha256 -r <"$kg_tar"; } 2>/dev/null )
kg_sum=${kg_sum%% *}
echo "KGAHP-OUTPUT-BEGIN 1 $kg_size ${kg_sum:--} $kg_enc"
if command -v base64 >/dev/null 2>&1; then base64 <"$kg_tar"; else openssl base64 <"$kg_tar"; fi
echo "KGAHP-OUTPUT-END"
rm -f "$kg_tar"
exit "$rc"
"""

# Init container: copy the Secret's `s/` tree into the sandbox, following the Secret volume's
# symlinks (-L) and keeping each item's mode (cp without -p keeps the source mode minus umask).
STAGE_IN_SCRIPT = r"""set -eu
cp -RL "$KGAHP_INPUT/s/." "$KGAHP_SANDBOX/"
"""


def wrapped_command(script: str, payload: list[str]) -> tuple[list[str], list[str]]:
    """(command, args) for a container that runs `payload` (argv) under `script`."""
    return ["sh", "-c", script], [WRAPPER_NAME, *payload]
