# Test stand-in for the UCI part of /lib/functions.sh. config_load evaluates `uci -n export`
# (the fake uci on PATH, built on ksmbd_embedded.uci) with config/option/list defined as here:
# values land in CONFIG_<section>_<option>, list items joined by spaces.
CONFIG_SECTIONS=
CONFIG_SECTION=

config() {
	CONFIG_SECTION=$2
	CONFIG_SECTIONS="$CONFIG_SECTIONS $2"
	eval "CONFIG_$2_TYPE=\$1"
}

option() {
	eval "CONFIG_${CONFIG_SECTION}_$1=\$2"
}

list() {
	eval "_old=\${CONFIG_${CONFIG_SECTION}_$1}"
	# shellcheck disable=SC2154
	if [ -n "$_old" ]; then
		eval "CONFIG_${CONFIG_SECTION}_$1=\"\$_old \$2\""
	else
		eval "CONFIG_${CONFIG_SECTION}_$1=\$2"
	fi
}

package() { :; }

config_load() {
	CONFIG_SECTIONS=
	eval "$(uci -q -c "$IPKG_INSTROOT/etc/config" -n export "$1")"
}

config_get() {
	# config_get VAR SECTION OPTION [DEFAULT]
	eval "_val=\${CONFIG_$2_$3-}"
	# shellcheck disable=SC2154
	[ -n "$_val" ] || _val=$4
	eval "$1=\$_val"
}

config_foreach() {
	_fn=$1
	_type=$2
	shift 2
	for _sec in $CONFIG_SECTIONS; do
		eval "_t=\${CONFIG_${_sec}_TYPE}"
		# shellcheck disable=SC2154
		[ -z "$_type" ] || [ "$_t" = "$_type" ] || continue
		"$_fn" "$_sec" "$@"
	done
}
