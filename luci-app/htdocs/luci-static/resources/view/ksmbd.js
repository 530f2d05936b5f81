'use strict';
'require view';
'require form';
'require uci';
'require rpc';
'require ui';
'require poll';
'require dom';
'require tools.widgets as widgets';

/*
 * Network Shares: the ksmbd-embedded SMB server.
 *
 * Status and Users talk to the server's own ubus object `ksmbd` (granted by
 * acl.d/luci-app-ksmbd-embedded.json); General Settings and Shared Directories
 * edit /etc/config/ksmbd with the option names and defaults of OpenWrt's
 * luci-app-ksmbd, so a config written by either page reads the same.
 * Strings that come from the network or the config (user names, client
 * addresses, paths) only ever go into E() inside an array: text nodes.
 */

var callStatus = rpc.declare({ object: 'ksmbd', method: 'status', expect: { '': {} } });
var callSessions = rpc.declare({ object: 'ksmbd', method: 'sessions', params: [ 'offset', 'limit' ], expect: { '': {} } });
var callOpenFiles = rpc.declare({ object: 'ksmbd', method: 'open_files', params: [ 'offset', 'limit' ], expect: { '': {} } });
var callShares = rpc.declare({ object: 'ksmbd', method: 'shares', params: [ 'offset', 'limit' ], expect: { '': {} } });
var callUsers = rpc.declare({ object: 'ksmbd', method: 'users', params: [ 'offset', 'limit' ], expect: { '': {} } });
var callDisconnect = rpc.declare({ object: 'ksmbd', method: 'disconnect', params: [ 'session' ], reject: true });
var callCloseFile = rpc.declare({ object: 'ksmbd', method: 'close_file', params: [ 'id' ], reject: true });
var callReload = rpc.declare({ object: 'ksmbd', method: 'reload', reject: true });
var callUserAdd = rpc.declare({ object: 'ksmbd', method: 'user_add', params: [ 'name', 'password' ], reject: true });
var callUserDel = rpc.declare({ object: 'ksmbd', method: 'user_del', params: [ 'name' ], reject: true });
var callUserPasswd = rpc.declare({ object: 'ksmbd', method: 'user_passwd', params: [ 'name', 'password' ], reject: true });

/* The server's dialect names, lowest first (config.py DIALECTS). */
var DIALECTS = [ 'SMB2_02', 'SMB2_10', 'SMB3_00', 'SMB3_02', 'SMB3_11' ];
var SHARE_NAME_BAD = /[\\\/:*?"<>|\[\]\x00-\x1f\x7f]/;

function fmtSize(bytes) {
	var units = [ 'B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB' ], n = Number(bytes) || 0, i = 0;
	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
}

function fmtDuration(seconds) {
	var s = Math.max(0, Math.floor(Number(seconds) || 0)),
	    d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24,
	    m = Math.floor(s / 60) % 60;
	if (d)
		return '%dd %dh'.format(d, h);
	if (h)
		return '%dh %dm'.format(h, m);
	if (m)
		return '%dm %ds'.format(m, s % 60);
	return '%ds'.format(s);
}

/* hosts allow / hosts deny entries, as the server reads them (host_access.py): addresses,
 * prefixes ("192.168.1."), networks (10.0.0.0/8, fd00::/8, 192.168.1.0/255.255.255.0), ALL,
 * EXCEPT; separated by spaces or commas. The server's check at load is the final word. */
function isIPv4(s) {
	var p = String(s).split('.');
	return p.length === 4 && p.every(function(o) { return /^\d{1,3}$/.test(o) && +o <= 255; });
}

function isIPv6(s) {
	var halves = String(s).split('::'), groups, tail = 0;
	if (halves.length > 2)
		return false;
	groups = [].concat.apply([], halves.map(function(h) { return h === '' ? [] : h.split(':'); }));
	if (groups.length && groups[groups.length - 1].indexOf('.') >= 0) {
		if (!isIPv4(groups.pop()))
			return false;
		tail = 2;
	}
	if (!groups.every(function(g) { return /^[0-9a-f]{1,4}$/i.test(g); }))
		return false;
	return halves.length === 2 ? groups.length + tail <= 7 : groups.length + tail === 8;
}

function isHostEntry(word) {
	var m = /^((?:\d{1,3}\.){1,3})$/.exec(word), slash, addr, len, mask;
	if (/^(all|except)$/i.test(word))
		return true;
	if (m)
		return m[1].split('.').slice(0, -1).every(function(o) { return +o <= 255; });
	slash = word.indexOf('/');
	addr = slash < 0 ? word : word.substring(0, slash);
	len = slash < 0 ? null : word.substring(slash + 1);
	if (/^\[.*\]$/.test(addr))
		addr = addr.slice(1, -1);
	if (isIPv4(addr)) {
		if (len === null || (/^\d{1,2}$/.test(len) && +len <= 32))
			return true;
		if (!isIPv4(len))
			return false;
		mask = len.split('.').reduce(function(acc, o) { return acc * 256 + +o; }, 0);
		return ((0xffffffff - mask + 1) & (0xffffffff - mask)) === 0; /* contiguous ones */
	}
	return isIPv6(addr) && (len === null || (/^\d{1,3}$/.test(len) && +len <= 128));
}

function validateHosts(section_id, value) {
	var bad = String(value || '').split(/[\s,]+/).filter(function(w) { return w && !isHostEntry(w); });
	if (bad.length)
		return _('Not a host entry: %s. Expecting addresses, prefixes such as 192.168.1., networks such as 192.168.1.0/24 or fd00::/8, or ALL').format(bad.join(' '));
	return true;
}

/* A host list option: shown as one line, written as one space-separated option (the server
 * also reads a UCI list). */
function hostsOption(o) {
	o.rmempty = true;
	o.placeholder = _('any');
	o.validate = validateHosts;
	o.cfgvalue = function(section_id) {
		return L.toArray(uci.get('ksmbd', section_id, this.option)).join(' ') || null;
	};
	return o;
}

/* A whole-number option from 0 to `max`; empty means the server's default (`placeholder`). */
function numberOption(o, max, placeholder) {
	o.rmempty = true;
	o.placeholder = placeholder;
	o.validate = function(section_id, value) {
		if (value == null || value === '' || (/^\d+$/.test(value) && +value <= max))
			return true;
		return _('Expecting: a whole number from 0 to %d').format(max);
	};
	return o;
}

function yesNo(value) {
	return value ? _('yes') : _('no');
}

/* The entries of a counter map that are not 0 (refusals by rule, timeouts by kind). */
function nonZero(map) {
	var out = {};
	Object.keys(map || {}).forEach(function(k) { if (map[k]) out[k] = map[k]; });
	return out;
}

function counts(map) {
	var keys = Object.keys(map || {});
	return keys.length ? keys.map(function(k) { return '%s (%d)'.format(k, map[k]); }).join(', ') : '-';
}

/* One table for every list on the page: rows are arrays of cells (text or nodes). */
function renderTable(id, headers, rows, emptyText) {
	var body = rows.length ? rows.map(function(cells) {
		return E('tr', { 'class': 'tr' }, cells.map(function(cell) {
			return E('td', { 'class': 'td' }, [ cell ]);
		}));
	}) : [
		E('tr', { 'class': 'tr placeholder' }, [
			E('td', { 'class': 'td', 'colspan': headers.length }, [ E('em', {}, [ emptyText ]) ])
		])
	];
	return E('table', { 'class': 'table', 'id': id }, [
		E('tr', { 'class': 'tr table-titles' }, headers.map(function(h) {
			return E('th', { 'class': 'th' }, [ h ]);
		}))
	].concat(body));
}

/*
 * Sessions, open files, shares and users come in pages ({ <list>, offset, total }): the
 * server keeps every ubus reply far below ubusd's 1 MiB message limit, so a page may hold
 * fewer entries than asked for. Read up to MAX_ROWS of a list: { items: [...], total: N }.
 */
var PAGE_SIZE = 100, MAX_ROWS = 500;

function fetchList(call, key) {
	var items = [];
	var next = function(offset) {
		return L.resolveDefault(call(offset, PAGE_SIZE), {}).then(function(reply) {
			var page = (reply && Array.isArray(reply[key])) ? reply[key] : [],
			    total = Math.max(Number(reply && reply.total) || 0, items.length + page.length);
			items = items.concat(page.slice(0, MAX_ROWS - items.length));
			if (page.length && items.length < total && items.length < MAX_ROWS)
				return next(offset + page.length);
			return { items: items, total: total };
		});
	};
	return next(0);
}

function fetchLists() {
	return Promise.all([
		fetchList(callSessions, 'sessions'),
		fetchList(callOpenFiles, 'open_files'),
		fetchList(callShares, 'shares'),
		fetchList(callUsers, 'users')
	]);
}

/* The table of a list, and below it a line when only its first MAX_ROWS are shown. */
function renderList(id, headers, list, rowFn, emptyText) {
	var table = renderTable(id, headers, list.items.map(rowFn), emptyText);
	if (list.items.length >= list.total)
		return [ table ];
	return [ table, E('p', { 'class': 'cbi-section-descr', 'id': id + '-more' }, [
		_('Showing the first %d of %d.').format(list.items.length, list.total)
	]) ];
}

/* Signing and encryption as they are: what the session must do, what it could use. */
function signingText(s) {
	if (s.signing_required)
		return s.signing_algorithm || _('required');
	return _('not required');
}

function encryptionText(s) {
	var cipher = s.negotiated_cipher, shares = s.encrypted_shares || [];
	if (s.encrypted)
		return cipher || _('yes');
	if (shares.length)
		return _('%s on %s').format(cipher || _('yes'), shares.join(', '));
	return cipher ? _('no (%s negotiated)').format(cipher) : _('no');
}

function notifyError(what, err) {
	ui.addNotification(null, E('p', [ '%s: %s'.format(what, err && err.message ? err.message : String(err)) ]), 'error');
}

function sessionUser(s) {
	if (s.anonymous)
		return _('anonymous');
	if (s.guest)
		return _('guest (%s)').format(s.user || '-');
	return s.domain ? s.domain + '\\' + s.user : (s.user || '-');
}

return view.extend({
	load: function() {
		return Promise.all([
			L.resolveDefault(callStatus(), {}),
			fetchLists(),
			uci.load('ksmbd')
		]).then(function(data) {
			return [ data[0] ].concat(data[1], [ data[2] ]);
		});
	},

	/* -- Status -------------------------------------------------------------------- */

	renderStatus: function(status, sessions, openFiles, shares) {
		var running = status && status.version != null;
		var summary = running ? renderTable('ksmbd-summary', [ _('Server'), '' ], [
			[ _('Version'), 'ksmbd-embedded ' + status.version ],
			[ _('Uptime'), fmtDuration(status.uptime) ],
			[ _('Listening on'), (status.listen || []).join(', ') || '-' ],
			[ _('Connections / sessions / open files'),
			  '%d / %d / %d'.format(status.connections || 0, status.sessions || 0, status.opens || 0) ],
			[ _('Read / written'), '%s / %s'.format(fmtSize(status.bytes_read), fmtSize(status.bytes_written)) ],
			[ _('Dialects in use'), counts(status.dialects) ],
			[ _('Ciphers negotiated'), counts(status.negotiated_ciphers) ],
			[ _('Connections refused'), counts(nonZero(status.refused)) ],
			[ _('Connections reclaimed / timed out'),
			  '%d / %s'.format(status.reclaimed || 0, counts(nonZero(status.timed_out))) ],
			[ _('Memory for transfers in use'), status.io_buffers
			  ? '%s of %s%s'.format(fmtSize(status.io_buffers.used), fmtSize(status.io_buffers.limit),
			      status.io_buffers.held ? _(', %d client(s) waiting').format(status.io_buffers.held) : '')
			  : '-' ]
		], '') : E('p', { 'class': 'alert-message warning' }, [
			_('The SMB server is not running or not reachable over ubus.')
		]);

		var shareRow = function(sh) {
			return [
				sh.name, sh.path, sh.available ? (sh.fs_type || '?') : _('unavailable: %s').format(sh.error || '?'),
				sh.available ? '%s / %s'.format(fmtSize(sh.free), fmtSize(sh.total)) : '-',
				String(sh.connected || 0)
			];
		};

		var sessionRow = L.bind(function(s) {
			return [
				sessionUser(s), s.client || '-', s.dialect || '-',
				signingText(s), encryptionText(s),
				(s.trees || []).join(', ') || '-', String(s.open_count || 0), fmtDuration(s.idle),
				E('button', {
					'class': 'cbi-button cbi-button-remove',
					'data-session': String(s.id),
					'click': ui.createHandlerFn(this, 'handleDisconnect', s.id)
				}, [ _('Disconnect') ])
			];
		}, this);

		var fileRow = L.bind(function(f) {
			return [
				f.share, f.path || '\\', f.user || '-', f.client || '-',
				(f.access || []).join(', ') || '-',
				String(f.lock_count != null ? f.lock_count : (f.locks || []).length),
				E('button', {
					'class': 'cbi-button cbi-button-remove',
					'data-open': String(f.id),
					'click': ui.createHandlerFn(this, 'handleCloseFile', f.id)
				}, [ _('Close') ])
			];
		}, this);

		return [
			summary,
			E('h4', {}, [ _('Shares') ])
		].concat(
			renderList('ksmbd-shares', [ _('Name'), _('Path'), _('File system'), _('Free / total'), _('Connected') ],
				shares, shareRow, _('No shares are being served.')),
			[ E('h4', {}, [ _('Sessions') ]) ],
			renderList('ksmbd-sessions', [ _('User'), _('Client'), _('Dialect'), _('Signing'), _('Encryption'),
				_('Shares'), _('Open files'), _('Idle'), '' ], sessions, sessionRow, _('No client is connected.')),
			[ E('h4', {}, [ _('Open files') ]) ],
			renderList('ksmbd-open-files', [ _('Share'), _('Path'), _('User'), _('Client'), _('Access'),
				_('Locks'), '' ], openFiles, fileRow, _('No file is open.'))
		);
	},

	refresh: function() {
		return Promise.all([
			L.resolveDefault(callStatus(), {}),
			fetchLists()
		]).then(L.bind(function(data) {
			var lists = data[1];
			dom.content(this.statusNode, this.renderStatus(data[0], lists[0], lists[1], lists[2]));
			dom.content(this.usersNode, this.renderUsers(lists[3]));
		}, this));
	},

	handleDisconnect: function(sessionId, ev) {
		return callDisconnect(sessionId)
			.catch(function(err) { notifyError(_('Cannot disconnect the session'), err); })
			.then(L.bind(this.refresh, this));
	},

	handleCloseFile: function(openId, ev) {
		return callCloseFile(openId)
			.catch(function(err) { notifyError(_('Cannot close the file'), err); })
			.then(L.bind(this.refresh, this));
	},

	handleReload: function(ev) {
		return callReload()
			.catch(function(err) { notifyError(_('Reload failed, the running configuration is kept'), err); })
			.then(L.bind(this.refresh, this));
	},

	/* -- Users --------------------------------------------------------------------- */

	renderUsers: function(users) {
		return renderList('ksmbd-users', [ _('User'), _('Sessions'), '' ], users, L.bind(function(u) {
			return [
				u.name, String(u.sessions || 0),
				E('span', {}, [
					E('button', {
						'class': 'cbi-button cbi-button-edit',
						'data-passwd': u.name,
						'click': ui.createHandlerFn(this, 'handleUserPasswd', u.name)
					}, [ _('Change password') ]),
					' ',
					E('button', {
						'class': 'cbi-button cbi-button-remove',
						'data-delete': u.name,
						'click': ui.createHandlerFn(this, 'handleUserDel', u.name)
					}, [ _('Delete') ])
				])
			];
		}, this), _('No users yet: add one below.'));
	},

	passwordFields: function(prefix) {
		return [
			E('input', { 'type': 'password', 'class': 'cbi-input-password', 'id': prefix + '-password',
				'placeholder': _('Password'), 'autocomplete': 'new-password' }),
			' ',
			E('input', { 'type': 'password', 'class': 'cbi-input-password', 'id': prefix + '-confirm',
				'placeholder': _('Confirm password'), 'autocomplete': 'new-password' })
		];
	},

	readPassword: function(prefix) {
		var pw = document.getElementById(prefix + '-password').value,
		    confirm = document.getElementById(prefix + '-confirm').value;
		if (!pw) {
			notifyError(_('Invalid password'), _('the password must not be empty'));
			return null;
		}
		if (pw !== confirm) {
			notifyError(_('Invalid password'), _('the passwords do not match'));
			return null;
		}
		return pw;
	},

	handleUserAdd: function(ev) {
		var nameField = document.getElementById('ksmbd-new-user'),
		    name = nameField.value.trim();
		if (!name || name.indexOf(':') >= 0) {
			notifyError(_('Invalid user name'), _('enter a name without ":"'));
			return Promise.resolve();
		}
		var pw = this.readPassword('ksmbd-new');
		if (pw == null)
			return Promise.resolve();
		return callUserAdd(name, pw).then(function() {
			nameField.value = '';
			document.getElementById('ksmbd-new-password').value = '';
			document.getElementById('ksmbd-new-confirm').value = '';
		}).catch(function(err) {
			notifyError(_('Cannot add the user (it may exist already)'), err);
		}).then(L.bind(this.refresh, this));
	},

	handleUserPasswd: function(name, ev) {
		ui.showModal(_('Change password'), [
			E('p', [ _('New password for user %s:').format(name) ]),
			E('p', this.passwordFields('ksmbd-passwd')),
			E('div', { 'class': 'right' }, [
				E('button', { 'class': 'cbi-button', 'click': ui.hideModal }, [ _('Cancel') ]),
				' ',
				E('button', {
					'class': 'cbi-button cbi-button-positive',
					'id': 'ksmbd-passwd-save',
					'click': ui.createHandlerFn(this, function() {
						var pw = this.readPassword('ksmbd-passwd');
						if (pw == null)
							return;
						return callUserPasswd(name, pw)
							.catch(function(err) { notifyError(_('Cannot change the password'), err); })
							.then(ui.hideModal)
							.then(L.bind(this.refresh, this));
					})
				}, [ _('Save') ])
			])
		]);
	},

	handleUserDel: function(name, ev) {
		ui.showModal(_('Delete user'), [
			E('p', [ _('Delete user %s? Sessions already open stay open until they end.').format(name) ]),
			E('div', { 'class': 'right' }, [
				E('button', { 'class': 'cbi-button', 'click': ui.hideModal }, [ _('Cancel') ]),
				' ',
				E('button', {
					'class': 'cbi-button cbi-button-negative',
					'id': 'ksmbd-delete-confirm',
					'click': ui.createHandlerFn(this, function() {
						return callUserDel(name)
							.catch(function(err) { notifyError(_('Cannot delete the user'), err); })
							.then(ui.hideModal)
							.then(L.bind(this.refresh, this));
					})
				}, [ _('Delete') ])
			])
		]);
	},

	/* -- Settings and shares (UCI) -------------------------------------------------- */

	renderMap: function() {
		var m, s, o;

		m = new form.Map('ksmbd');

		s = m.section(form.TypedSection, 'globals', _('Settings'));
		s.anonymous = true;
		s.tab('general', _('General Settings'));
		s.tab('security', _('Security and protocols'));
		s.tab('limits', _('Connections'));

		o = s.taboption('general', widgets.NetworkSelect, 'interface', _('Interface'),
			_('Listen only on the given interface or, if unspecified, on lan'));
		o.multiple = true;
		o.nocreate = true;
		o.cfgvalue = function(section_id) {
			return L.toArray(uci.get('ksmbd', section_id, 'interface'));
		};
		o.write = function(section_id, value) {
			/* One space-separated option, as OpenWrt's ksmbd init script reads it. */
			var wanted = L.toArray(value),
			    before = L.toArray(this.cfgvalue(section_id)).slice().sort().join(' '),
			    after = wanted.slice().sort().join(' ');
			if (before !== after)
				uci.set('ksmbd', section_id, 'interface', wanted.join(' '));
		};

		o = s.taboption('general', form.Value, 'workgroup', _('Workgroup'));
		o.placeholder = 'WORKGROUP';

		o = s.taboption('general', form.Value, 'description', _('Description'));
		o.placeholder = 'Ksmbd on OpenWrt';

		o = s.taboption('general', form.Flag, 'allow_legacy_protocols', _('Allow legacy (insecure) protocols/authentication.'),
			_('Kept for compatibility with the old ksmbd package, where it enabled SMB1. This server never offers SMB1 or LANMAN/NTLMv1; SMB 2.0.2 is allowed unless the minimum protocol is raised.'));

		o = s.taboption('general', form.Flag, 'allow_guest_ipc', _('Allow guest on IPC$'),
			_('Let guests list the shares; a share that does not set "Allow guests" inherits it.'));

		o = s.taboption('security', form.ListValue, 'server_signing', _('Signing'),
			_('Mandatory: every client must sign its messages. Auto: sign when the client asks for it.'));
		o.value('auto', _('auto'));
		o.value('mandatory', _('mandatory'));
		o.value('disabled', _('disabled'));
		o.default = 'auto';

		o = s.taboption('security', form.ListValue, 'smb3_encryption', _('Encryption'),
			_('SMB3 encryption. Mandatory refuses clients that cannot encrypt (SMB 2.x).'));
		o.value('auto', _('auto'));
		o.value('mandatory', _('mandatory'));
		o.value('disabled', _('disabled'));
		o.default = 'auto';

		o = s.taboption('security', form.ListValue, 'server_min_protocol', _('Minimum protocol'),
			_('SMB2_02 also serves clients that speak only SMB 2.0.2 (printers, media players, embedded libraries). SMB1 is never offered.'));
		DIALECTS.forEach(function(d) { o.value(d, d); });
		o.default = 'SMB2_02';

		o = hostsOption(s.taboption('security', form.Value, 'hosts_allow', _('Allowed hosts'),
			_('Only these clients may connect: addresses, prefixes such as 192.168.1., networks such as 192.168.1.0/24 or fd00::/8, separated by spaces. Empty: every client. The router itself (127.0.0.1, ::1) is allowed unless denied below.')));

		o = hostsOption(s.taboption('security', form.Value, 'hosts_deny', _('Denied hosts'),
			_('These clients are disconnected at once. Denied wins: a client in both lists is refused, unless its "Allowed hosts" entry is more specific (ALL here and 192.168.1. above admits only 192.168.1.x; 192.168.1. above and 192.168.1.66 here keeps one host out).')));

		o = s.taboption('security', form.ListValue, 'server_max_protocol', _('Maximum protocol'));
		DIALECTS.forEach(function(d) { o.value(d, d); });
		o.default = 'SMB3_11';
		o.validate = function(section_id, value) {
			var low = this.section.formvalue(section_id, 'server_min_protocol');
			if (low && DIALECTS.indexOf(low) > DIALECTS.indexOf(value))
				return _('The maximum protocol must not be below the minimum protocol');
			return true;
		};

		numberOption(s.taboption('limits', form.Value, 'max_connections', _('Maximum connections'),
			_('Connections from all clients together (0: 65536). At the limit, the connection without open files that has been idle longest is closed for a new one; a new one is refused only when every connection has files open.')), 65536, '256');

		numberOption(s.taboption('limits', form.Value, 'max_ip_connections', _('Maximum connections per client'),
			_('Connections from one client address (0: 65536). A client that reconnects after a dropped link is not locked out by its old connections: those without open files are closed for it, the idlest first.')), 65536, '32');

		numberOption(s.taboption('limits', form.Value, 'deadtime', _('Idle timeout (minutes)'),
			_('Close a connection with no open files after this many minutes without a request (clients reconnect by themselves). 0: never.')), 65535, '0');

		numberOption(s.taboption('limits', form.Value, 'logon_timeout', _('Logon timeout (seconds)'),
			_('Close a connection that has not logged on within this time. 0: no limit.')), 3600, '20');

		o = s.taboption('limits', form.Value, 'memory_limit', _('Memory for transfers'),
			_('Buffers for data in flight, all clients together, e.g. 16M. When it is spent, clients wait (nothing fails). Empty: from the router\'s RAM (16M below 128 MB).'));
		o.rmempty = true;
		o.placeholder = _('from RAM');
		o.validate = function(section_id, value) {
			var m = /^(\d+)([KMG]?)$/i.exec(value || ''), bytes;
			if (!value)
				return true;
			bytes = m ? +m[1] * { '': 1, 'K': 1024, 'M': 1048576, 'G': 1073741824 }[m[2].toUpperCase()] : 0;
			if (bytes >= 4194304 && bytes <= 4294967296)
				return true;
			return _('Expecting: a size from 4M to 4G, e.g. 16M');
		};

		numberOption(s.taboption('limits', form.Value, 'frame_timeout', _('Request timeout (seconds)'),
			_('Close a connection whose request has started arriving but is not complete after this time, or whose client has read none of its waiting answers for this long. 0: no limit.')), 3600, '30');

		s = m.section(form.TableSection, 'share', _('Shared Directories'),
			_('Please add directories to share. Each directory refers to a folder on a mounted device.'));
		s.anonymous = true;
		s.addremove = true;

		o = s.option(form.Value, 'name', _('Name'));
		o.rmempty = false;
		o.validate = function(section_id, value) {
			if (!value)
				return _('Expecting: a share name');
			if (SHARE_NAME_BAD.test(value) || value.toUpperCase() === 'IPC$' || value.length > 63)
				return _('Share names have at most 63 characters, none of \\ / : * ? " < > | [ ], and IPC$ is reserved');
			return true;
		};

		o = s.option(form.Value, 'path', _('Path'));
		o.rmempty = false;
		o.placeholder = '/mnt/sda1';
		o.validate = function(section_id, value) {
			return (value && value.charAt(0) === '/') ? true : _('Expecting: an absolute path');
		};

		o = s.option(form.Flag, 'browseable', _('Browse-able'));
		o.enabled = 'yes';
		o.disabled = 'no';
		o.default = 'yes';

		o = s.option(form.Flag, 'read_only', _('Read-only'));
		o.enabled = 'yes';
		o.disabled = 'no';
		o.default = 'no'; /* the server's default is yes */
		o.rmempty = false;

		s.option(form.Flag, 'force_root', _('Force Root'));

		o = s.option(form.Value, 'users', _('Allowed users'),
			_('Only these users (separated by spaces) may use the share; guests are then refused too, even with "Allow guests". Empty: every user.'));
		o.rmempty = true;

		o = s.option(form.Flag, 'guest_ok', _('Allow guests'),
			_('Clients without an account (no password, or an unknown user name) may use the share, unless "Allowed users" names its users.'));
		o.enabled = 'yes';
		o.disabled = 'no';
		o.default = 'yes'; /* the server's default is no */
		o.rmempty = false;

		hostsOption(s.option(form.Value, 'hosts_allow', _('Allowed hosts'),
			_('Only these clients may use the share (addresses, prefixes, networks); the router itself unless denied. Empty: every client the settings allow.')));

		hostsOption(s.option(form.Value, 'hosts_deny', _('Denied hosts'),
			_('These clients may not use the share, even when also in "Allowed hosts", unless that entry is more specific.')));

		o = s.option(form.Flag, 'inherit_owner', _('Inherit owner'));
		o.enabled = 'yes';
		o.disabled = 'no';
		o.default = 'no';

		o = s.option(form.Flag, 'hide_dot_files', _('Hide dot files'));
		o.enabled = 'yes';
		o.disabled = 'no';
		o.default = 'yes';

		o = s.option(form.Flag, 'oplocks', _('Oplocks'),
			_('Clients may cache the share\'s files (faster); turn off for files changed on the router itself.'));
		o.enabled = 'yes';
		o.disabled = 'no';
		o.default = 'yes';

		[ [ 'create_mask', _('Create mask'), '0666' ], [ 'dir_mask', _('Directory mask'), '0777' ] ]
		.forEach(function(mask) {
			o = s.option(form.Value, mask[0], mask[1]);
			o.maxlength = 4;
			o.default = mask[2];
			o.placeholder = mask[2];
			o.rmempty = false;
			o.validate = function(section_id, value) {
				return /^[0-7]{3,4}$/.test(value) ? true : _('Expecting: an octal mask such as %s').format(mask[2]);
			};
		});

		return m.render();
	},

	render: function(data) {
		this.statusNode = E('div', { 'id': 'ksmbd-status' }, this.renderStatus(data[0], data[1], data[2], data[3]));
		this.usersNode = E('div', { 'id': 'ksmbd-users-list' }, this.renderUsers(data[4]));

		poll.add(L.bind(this.refresh, this), 5);

		return this.renderMap().then(L.bind(function(mapNode) {
			return E('div', {}, [
				E('h2', {}, [ _('Network Shares') ]),
				E('div', { 'class': 'cbi-section', 'id': 'ksmbd-status-section' }, [
					E('h3', {}, [ _('Status') ]),
					E('div', { 'class': 'right' }, [
						E('button', {
							'class': 'cbi-button cbi-button-action',
							'id': 'ksmbd-reload',
							'click': ui.createHandlerFn(this, 'handleReload')
						}, [ _('Reload configuration') ])
					]),
					this.statusNode
				]),
				mapNode,
				E('div', { 'class': 'cbi-section', 'id': 'ksmbd-users-section' }, [
					E('h3', {}, [ _('Users') ]),
					E('div', { 'class': 'cbi-section-descr' }, [
						_('Users of the SMB server (/etc/ksmbd/ksmbdpwd.db). Changes take effect at once; "Allowed users" of a share refers to these names.')
					]),
					this.usersNode,
					E('div', { 'class': 'cbi-section-create' }, [
						E('input', { 'type': 'text', 'class': 'cbi-input-text', 'id': 'ksmbd-new-user',
							'placeholder': _('New user name'), 'autocomplete': 'off' }),
						' '
					].concat(this.passwordFields('ksmbd-new'), [
						' ',
						E('button', {
							'class': 'cbi-button cbi-button-add',
							'id': 'ksmbd-user-add',
							'click': ui.createHandlerFn(this, 'handleUserAdd')
						}, [ _('Add user') ])
					]))
				])
			]);
		}, this));
	}
});
