# Test stand-in for /lib/functions/procd.sh: every call is appended to $PROCD_LOG as one line,
# the function name and its arguments separated by tabs.
_procd_record() {
	{
		printf '%s' "$1"
		shift
		for arg in "$@"; do
			printf '\t%s' "$arg"
		done
		printf '\n'
	} >> "$PROCD_LOG"
}

procd_open_service() { _procd_record procd_open_service "$@"; }
procd_close_service() {
	service_triggers
	_procd_record procd_close_service "$@"
}
procd_open_instance() { _procd_record procd_open_instance "$@"; }
procd_close_instance() { _procd_record procd_close_instance "$@"; }
procd_set_param() { _procd_record procd_set_param "$@"; }
procd_append_param() { _procd_record procd_append_param "$@"; }
procd_add_mdns() { _procd_record procd_add_mdns "$@"; }
procd_add_reload_trigger() { _procd_record procd_add_reload_trigger "$@"; }
procd_add_reload_interface_trigger() { _procd_record procd_add_reload_interface_trigger "$@"; }
procd_add_interface_trigger() { _procd_record procd_add_interface_trigger "$@"; }
procd_add_config_trigger() { _procd_record procd_add_config_trigger "$@"; }
procd_send_signal() { _procd_record procd_send_signal "$@"; }
procd_kill() { _procd_record procd_kill "$@"; }
