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

# Test stand-in for the package part of /lib/functions.sh (base-files), which OpenWrt's
# maintainer scripts call: default_postinst / default_prerm as the real ones behave on a
# live system (IPKG_INSTROOT empty), except that the system's / is $FAKE_ROOT. They read the
# package's file list (opkg: /usr/lib/opkg/info/NAME.list, apk: /lib/apk/packages/NAME.list),
# source opkg's NAME.postinst-pkg / NAME.prerm-pkg, and for each /etc/init.d/ script in the
# list: postinst enables it (unless PKG_UPGRADE=1) and starts it; prerm disables it (unless
# PKG_UPGRADE=1) and stops it. pkgname comes from the environment (apk) or the script's name.
_pkg_filelist() {
	_list="$FAKE_ROOT/usr/lib/opkg/info/$pkgname.list"
	[ -f "$FAKE_ROOT/lib/apk/packages/$pkgname.list" ] && _list="$FAKE_ROOT/lib/apk/packages/$pkgname.list"
	echo "$_list"
}

add_group_and_user() { :; }

# $1: postinst-pkg or prerm-pkg (opkg's part of the package's own code); $2, $3: the actions on
# each init script the package installs (enable start, or disable stop; $2 not on upgrade).
_pkg_script() {
	_ret=0
	if [ -f "$FAKE_ROOT/usr/lib/opkg/info/$pkgname.$1" ]; then
		( . "$FAKE_ROOT/usr/lib/opkg/info/$pkgname.$1" )
		_ret=$?
	fi
	for _i in $(grep -s "^/etc/init.d/" "$(_pkg_filelist)"); do
		[ "$PKG_UPGRADE" = "1" ] || "$FAKE_ROOT$_i" "$2"
		"$FAKE_ROOT$_i" "$3"
	done
	return $_ret
}

default_postinst() {
	[ -z "$pkgname" ] && pkgname="$(basename "${1%.*}")"
	_pkg_script postinst-pkg enable start
}

default_prerm() {
	[ -z "$pkgname" ] && pkgname="$(basename "${1%.*}")"
	_pkg_script prerm-pkg disable stop
}
