# Test stand-in for /lib/functions/network.sh: interfaces listed in $FAKE_NET_UP are up;
# their addresses come from $FAKE_NET_<iface>_IP4 and $FAKE_NET_<iface>_IP6.
network_is_up() {
	case " $FAKE_NET_UP " in
		*" $1 "*) return 0 ;;
	esac
	return 1
}
network_get_ipaddrs() {
	network_is_up "$2" || return 1
	eval "$1=\"\${FAKE_NET_$2_IP4}\""
}
network_get_ipaddrs6() {
	network_is_up "$2" || return 1
	eval "$1=\"\${FAKE_NET_$2_IP6}\""
}
