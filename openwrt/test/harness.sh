# shellcheck shell=sh
# Runs the init script's functions under busybox ash with procd and uci stubbed.
#   busybox ash harness.sh INIT_SCRIPT UCI_FIXTURE OUTDIR FUNCTION...
# procd calls are appended to OUTDIR/procd.log, one call a line.
INIT=$1
FIXTURE=$2
OUT=$3
shift 3

uci() {
	[ "$1" = -q ] && shift
	case "$1" in
		get)
			_line=$(grep -F "$2=" "$FIXTURE" | grep "^$2=" | head -n 1) || return 1
			[ -n "$_line" ] || return 1
			printf '%s\n' "${_line#*=}"
			;;
		show)
			grep "^$2\." "$FIXTURE" || return 1
			;;
		*) return 1 ;;
	esac
}
for f in procd_open_instance procd_set_param procd_close_instance procd_add_reload_trigger \
	procd_open_trigger procd_close_trigger procd_add_interface_trigger; do
	eval "$f() { echo \"$f \$*\" >>\"\$OUT/procd.log\"; }"
done

# shellcheck disable=SC2034 # read by the sourced init script
DUOCELL_RUNDIR=$OUT/run
# The init script is meant for /etc/rc.common; sourced here its shebang is a comment.
# shellcheck disable=SC1090
. "$INIT"
for fn in "$@"; do
	"$fn" || { echo "harness: $fn failed" >&2; exit 1; }
done
