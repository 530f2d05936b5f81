/*
 * A minimal stand-in for LuCI's client API (luci.js and the modules view, form, uci, rpc,
 * ui, poll, dom, tools.widgets), written for the tests from LuCI's documented behaviour
 * (openwrt.github.io/luci/jsapi): enough to load and drive a view the way LuCI does.
 *
 * - L.require('view.x') fetches /luci-static/resources/view/x.js, reads its 'require'
 *   directives, compiles it with the named modules in scope and instantiates the returned
 *   class; a view's __init__ runs load() -> render() and adds the Save & Apply footer.
 * - rpc.declare() posts JSON-RPC 2.0 `call` messages to /ubus/<object>.<method> with
 *   LuCI's reply handling: [status, data] results, `expect` defaults, `reject`.
 * - uci keeps a working copy of each loaded config; save() sends the differences as rpcd's
 *   uci add/set/delete calls (staged by the server), ui.changes.apply() calls uci apply.
 * - form renders Map / TypedSection (with tabs) / TableSection and the Value, Flag,
 *   ListValue options with LuCI's parse rules (rmempty, defaults, Flag enabled/disabled).
 * - E()/dom.append follow LuCI: a bare string child is innerHTML, strings inside an array
 *   are text nodes.
 * window.__shim records what the test waits for (ready, error, applied count, errors) and
 * every bare string E()/dom.append turned into markup.
 */
(function() {
	'use strict';

	var shim = window.__shim = { ready: false, error: null, applied: 0, saved: 0, errors: [], markup: [] };
	var POLL_SCALE = window.SHIM_POLL_SCALE || 1;

	/* ---- String.prototype.format (%s, %d, %%) ------------------------------------- */
	String.prototype.format = function() {
		var args = arguments, i = 0;
		return String(this).replace(/%(%|s|d)/g, function(m, k) {
			if (k === '%')
				return '%';
			var v = args[i++];
			return k === 'd' ? String(Math.floor(Number(v) || 0)) : String(v == null ? '' : v);
		});
	};

	/* ---- classes -------------------------------------------------------------------- */
	function Class() {}
	Class.extend = function(props) {
		var Super = this;
		var Cls = function() {
			if (typeof this.__init__ === 'function')
				this.__init__.apply(this, arguments);
		};
		Cls.prototype = Object.create(Super.prototype);
		Object.keys(props || {}).forEach(function(k) { Cls.prototype[k] = props[k]; });
		Cls.prototype.constructor = Cls;
		Cls.extend = Class.extend;
		Cls.instantiate = function(args) {
			return new (Function.prototype.bind.apply(Cls, [ null ].concat(args)))();
		};
		return Cls;
	};

	/* ---- dom and E() ------------------------------------------------------------------ */
	function isElem(x) { return x != null && typeof x === 'object' && 'nodeType' in x; }

	var dom = {
		elem: isElem,
		append: function(node, children) {
			if (children == null)
				return null;
			if (Array.isArray(children)) {
				children.forEach(function(c) {
					if (isElem(c))
						node.appendChild(c);
					else if (c != null)
						node.appendChild(document.createTextNode(String(c)));
				});
				return node.lastChild;
			}
			if (isElem(children))
				return node.appendChild(children);
			shim.markup.push(String(children)); /* the test wants none: LuCI makes it markup */
			node.innerHTML = String(children);
			return node.lastChild;
		},
		content: function(node, children) {
			while (node.firstChild)
				node.removeChild(node.firstChild);
			return dom.append(node, children);
		},
		create: function(tag, attrs, children) {
			if (children === undefined && (Array.isArray(attrs) || isElem(attrs) || typeof attrs === 'string')) {
				children = attrs;
				attrs = null;
			}
			var node = document.createElement(tag);
			Object.keys(attrs || {}).forEach(function(k) {
				var v = attrs[k];
				if (v == null || v === false)
					return;
				if (typeof v === 'function')
					node.addEventListener(k, v);
				else
					node.setAttribute(k, v === true ? '' : (typeof v === 'object' ? JSON.stringify(v) : String(v)));
			});
			dom.append(node, children);
			return node;
		}
	};
	window.E = function(tag, attrs, children) { return dom.create(tag, attrs, children); };
	window._ = function(s) { return s; };

	/* ---- rpc ---------------------------------------------------------------------------- */
	var rpcId = 1;
	var statusText = [ 'Command OK', 'Invalid command', 'Invalid argument', 'Method not found',
		'Resource not found', 'No data received', 'Permission denied', 'Request timeout',
		'Not supported', 'Unspecified error', 'Connection lost' ];

	function rpcCall(object, method, params) {
		var msg = { jsonrpc: '2.0', id: rpcId++, method: 'call',
			params: [ '00000000000000000000000000000000', object, method, params || {} ] };
		return fetch('/ubus/' + object + '.' + method, {
			method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(msg)
		}).then(function(res) {
			if (!res.ok)
				throw new Error('RPC call to %s/%s failed with HTTP error %d'.format(object, method, res.status));
			return res.json();
		}).then(function(reply) {
			if (reply.error)
				throw new Error('RPC call to %s/%s failed with error %d: %s'.format(object, method, reply.error.code, reply.error.message));
			return reply.result;
		});
	}

	var rpc = Class.extend({
		declare: function(options) {
			return function() {
				var args = Array.prototype.slice.call(arguments), params = {};
				(options.params || []).forEach(function(name, i) { params[name] = args[i]; });
				return rpcCall(options.object, options.method, params).then(function(result) {
					var ret = null;
					if (Array.isArray(result)) {
						if (options.reject && result[0] !== 0)
							throw new Error('RPC call to %s/%s failed with ubus code %d: %s'.format(
								options.object, options.method, result[0], statusText[result[0]] || 'Unknown error code'));
						ret = result.length > 1 ? result[1] : result[0];
					}
					if (options.expect) {
						var key = Object.keys(options.expect)[0], def = options.expect[key],
						    type = Object.prototype.toString;
						if (ret != null && key !== '')
							ret = ret[key];
						if (ret == null || type.call(ret) !== type.call(def))
							ret = def;
					}
					if (typeof options.filter === 'function')
						ret = options.filter(ret, params);
					return ret;
				});
			};
		},
		getStatusText: function(code) { return statusText[code] || 'Unknown error code'; }
	});
	rpc = new rpc();

	/* ---- uci ----------------------------------------------------------------------------- */
	function clone(x) { return JSON.parse(JSON.stringify(x)); }
	function isEqual(a, b) {
		if (Array.isArray(a) || Array.isArray(b))
			return JSON.stringify(L.toArray(a)) === JSON.stringify(L.toArray(b));
		return (a == null ? '' : String(a)) === (b == null ? '' : String(b));
	}

	var uci = {
		state: {},
		load: function(config) {
			if (uci.state[config])
				return Promise.resolve(config);
			return rpcCall('uci', 'get', { config: config }).then(function(result) {
				if (result[0] !== 0)
					throw new Error('uci get %s failed with ubus code %d'.format(config, result[0]));
				var values = result[1].values;
				uci.state[config] = { orig: clone(values), data: clone(values), seq: 0 };
				return config;
			});
		},
		unload: function(config) { delete uci.state[config]; },
		sections: function(config, type) {
			var data = uci.state[config].data;
			return Object.keys(data).map(function(k) { return data[k]; })
				.filter(function(s) { return !type || s['.type'] === type; })
				.sort(function(a, b) { return a['.index'] - b['.index']; });
		},
		get: function(config, sid, option) {
			var s = uci.state[config] && uci.state[config].data[sid];
			if (!s)
				return null;
			return option == null ? s : (s[option] == null ? null : s[option]);
		},
		set: function(config, sid, option, value) {
			var s = uci.state[config].data[sid];
			if (value == null || value === '' || (Array.isArray(value) && !value.length))
				delete s[option];
			else
				s[option] = value;
		},
		unset: function(config, sid, option) { uci.set(config, sid, option, null); },
		add: function(config, type) {
			var st = uci.state[config], sid = 'new' + (++st.seq);
			st.data[sid] = { '.type': type, '.name': sid, '.anonymous': true, '.index': 1000 + st.seq };
			return sid;
		},
		remove: function(config, sid) { delete uci.state[config].data[sid]; },
		options: function(s) {
			var out = {};
			Object.keys(s).forEach(function(k) { if (k.charAt(0) !== '.') out[k] = s[k]; });
			return out;
		},
		/* Send the differences to the server's staging area, then reload from it. */
		save: function() {
			var calls = [];
			Object.keys(uci.state).forEach(function(config) {
				var st = uci.state[config];
				Object.keys(st.orig).forEach(function(sid) {
					if (!st.data[sid])
						calls.push([ 'delete', { config: config, section: sid } ]);
				});
				Object.keys(st.data).forEach(function(sid) {
					var now = uci.options(st.data[sid]);
					if (!st.orig[sid]) {
						calls.push([ 'add', { config: config, type: st.data[sid]['.type'], values: now } ]);
						return;
					}
					var before = uci.options(st.orig[sid]), set = {}, gone = [];
					Object.keys(now).forEach(function(k) { if (!isEqual(now[k], before[k])) set[k] = now[k]; });
					Object.keys(before).forEach(function(k) { if (!(k in now)) gone.push(k); });
					if (Object.keys(set).length)
						calls.push([ 'set', { config: config, section: sid, values: set } ]);
					if (gone.length)
						calls.push([ 'delete', { config: config, section: sid, options: gone } ]);
				});
			});
			var configs = Object.keys(uci.state);
			return calls.reduce(function(p, c) {
				return p.then(function() {
					return rpcCall('uci', c[0], c[1]).then(function(r) {
						if (r[0] !== 0)
							throw new Error('uci %s failed with ubus code %d'.format(c[0], r[0]));
					});
				});
			}, Promise.resolve()).then(function() {
				configs.forEach(uci.unload);
				shim.saved++;
				return Promise.all(configs.map(uci.load));
			});
		}
	};

	/* ---- ui ------------------------------------------------------------------------------ */
	var ui = {
		addNotification: function(title, children, cls) {
			var box = document.getElementById('notifications');
			var n = E('div', { 'class': 'alert-message ' + (cls || '') }, [
				title ? E('h4', {}, [ title ]) : '',
				E('div', {}, Array.isArray(children) ? children : [ children ])
			]);
			box.appendChild(n);
			if (cls === 'error')
				shim.errors.push(n.textContent);
			return n;
		},
		showModal: function(title, children) {
			ui.hideModal();
			var modal = E('div', { 'class': 'modal', 'id': 'modal' }, [
				E('h4', {}, [ title ]), E('div', {}, children)
			]);
			document.body.appendChild(E('div', { 'id': 'modal_overlay' }, [ modal ]));
			return modal;
		},
		hideModal: function() {
			var o = document.getElementById('modal_overlay');
			if (o)
				o.parentNode.removeChild(o);
		},
		createHandlerFn: function(ctx, fn) {
			var args = Array.prototype.slice.call(arguments, 2);
			if (typeof fn === 'string')
				fn = ctx[fn];
			return function(ev) {
				var button = ev.currentTarget;
				button.disabled = true;
				return Promise.resolve(fn.apply(ctx, args.concat([ ev ])))
					.catch(function(e) { shim.errors.push(String(e)); })
					.then(function() { button.disabled = false; });
			};
		},
		changes: {
			apply: function() {
				return rpcCall('uci', 'apply', { rollback: false }).then(function(r) {
					if (r[0] !== 0)
						throw new Error('uci apply failed with ubus code %d'.format(r[0]));
					shim.applied++;
					ui.addNotification(null, E('p', [ 'Configuration changes applied.' ]), 'info');
				});
			}
		}
	};

	/* ---- poll ----------------------------------------------------------------------------- */
	var poll = {
		queue: [],
		add: function(fn, interval) {
			var entry = { fn: fn, busy: false };
			entry.timer = setInterval(function() {
				if (entry.busy)
					return;
				entry.busy = true;
				Promise.resolve().then(fn).catch(function(e) { shim.errors.push(String(e)); })
					.then(function() { entry.busy = false; });
			}, interval * 1000 * POLL_SCALE);
			poll.queue.push(entry);
			return true;
		},
		active: function() { return poll.queue.length > 0; }
	};

	/* ---- form ----------------------------------------------------------------------------- */
	function cbid(map, sid, option) { return 'cbid.' + map.config + '.' + sid + '.' + option; }

	var Map = Class.extend({
		__init__: function(config, title, description) {
			this.config = config;
			this.title = title;
			this.description = description;
			this.children = [];
			this.root = null;
		},
		section: function(cls) {
			var s = cls.instantiate([ this ].concat(Array.prototype.slice.call(arguments, 1)));
			this.children.push(s);
			return s;
		},
		load: function() { return uci.load(this.config); },
		render: function() {
			return this.load().then(this.renderContents.bind(this));
		},
		renderContents: function() {
			if (!this.root) {
				this.root = E('div', { 'class': 'cbi-map', 'id': 'cbi-' + this.config });
				this.root.__map = this;
			}
			dom.content(this.root, [
				this.title ? E('h2', {}, [ this.title ]) : '',
				this.description ? E('div', { 'class': 'cbi-map-descr' }, [ this.description ]) : ''
			].concat(this.children.map(function(s) { return s.render(); })));
			return this.root;
		},
		parse: function() {
			return this.children.reduce(function(p, s) {
				return p.then(function() { return s.parse(); });
			}, Promise.resolve());
		},
		save: function(cb, silent) {
			return this.parse()
				.then(cb)
				.then(function() { return uci.save(); })
				.then(this.renderContents.bind(this))
				.catch(function(e) {
					if (!silent)
						ui.addNotification(null, E('p', [ 'Cannot save: ' + e.message ]), 'error');
					return Promise.reject(e);
				});
		},
		reset: function() {
			uci.unload(this.config);
			return this.render();
		}
	});

	var TypedSection = Class.extend({
		__init__: function(map, type, title, description) {
			this.map = map;
			this.sectiontype = type;
			this.title = title;
			this.description = description;
			this.children = [];
			this.tabs = null;
			this.anonymous = false;
			this.addremove = false;
		},
		tab: function(name, title) {
			this.tabs = this.tabs || [];
			this.tabs.push({ name: name, title: title });
		},
		option: function(cls, option, title, description) {
			var o = cls.instantiate([ this.map, this, option, title, description ]);
			this.children.push(o);
			return o;
		},
		taboption: function(tab, cls, option, title, description) {
			var o = this.option(cls, option, title, description);
			o.tab = tab;
			return o;
		},
		cfgsections: function() {
			return uci.sections(this.map.config, this.sectiontype).map(function(s) { return s['.name']; });
		},
		formvalue: function(sid, option) {
			var o = this.children.filter(function(c) { return c.option === option; })[0];
			return o ? o.formvalue(sid) : null;
		},
		parse: function() {
			var self = this;
			return Promise.all(this.cfgsections().map(function(sid) {
				return Promise.all(self.children.map(function(o) { return o.parse(sid); }));
			}));
		},
		renderOption: function(o, sid) {
			var id = cbid(this.map, sid, o.option);
			return E('div', { 'class': 'cbi-value', 'data-name': o.option }, [
				E('label', { 'class': 'cbi-value-title', 'for': 'widget.' + id }, [ o.title || o.option ]),
				E('div', { 'class': 'cbi-value-field' }, [
					o.renderWidget(sid),
					o.description ? E('div', { 'class': 'cbi-value-description' }, [ o.description ]) : ''
				])
			]);
		},
		renderNode: function(sid) {
			var self = this, groups;
			if (this.tabs)
				groups = this.tabs.map(function(t) {
					return E('fieldset', { 'class': 'cbi-tab', 'data-tab': t.name }, [
						E('legend', {}, [ t.title ])
					].concat(self.children.filter(function(o) { return o.tab === t.name; })
						.map(function(o) { return self.renderOption(o, sid); })));
				});
			else
				groups = this.children.map(function(o) { return self.renderOption(o, sid); });
			return E('div', { 'class': 'cbi-section-node', 'data-sid': sid }, groups);
		},
		render: function() {
			var self = this;
			return E('div', { 'class': 'cbi-section', 'data-section-type': this.sectiontype }, [
				this.title ? E('h3', {}, [ this.title ]) : '',
				this.description ? E('div', { 'class': 'cbi-section-descr' }, [ this.description ]) : ''
			].concat(this.cfgsections().map(function(sid) { return self.renderNode(sid); })));
		}
	});

	var TableSection = TypedSection.extend({
		handleAdd: function(ev) {
			uci.add(this.map.config, this.sectiontype);
			return this.map.save(null, true);
		},
		handleRemove: function(sid, ev) {
			uci.remove(this.map.config, sid);
			return this.map.save(null, true);
		},
		render: function() {
			var self = this;
			var rows = this.cfgsections().map(function(sid) {
				return E('tr', { 'class': 'tr cbi-section-table-row', 'data-sid': sid },
					self.children.map(function(o) {
						return E('td', { 'class': 'td cbi-value-field', 'data-name': o.option }, [ o.renderWidget(sid) ]);
					}).concat(self.addremove ? [ E('td', { 'class': 'td cbi-section-table-cell' }, [
						E('button', { 'class': 'cbi-button cbi-button-remove', 'title': 'Delete',
							'click': ui.createHandlerFn(self, 'handleRemove', sid) }, [ 'Delete' ])
					]) ] : []));
			});
			return E('div', { 'class': 'cbi-section cbi-tblsection', 'data-section-type': this.sectiontype }, [
				this.title ? E('h3', {}, [ this.title ]) : '',
				this.description ? E('div', { 'class': 'cbi-section-descr' }, [ this.description ]) : '',
				E('table', { 'class': 'table cbi-section-table' }, [
					E('tr', { 'class': 'tr cbi-section-table-titles' }, this.children.map(function(o) {
						return E('th', { 'class': 'th' }, [ o.title || o.option ]);
					}))
				].concat(rows.length ? rows : [
					E('tr', { 'class': 'tr placeholder' }, [ E('td', { 'class': 'td' }, [ E('em', {}, [ 'This section contains no values yet' ]) ]) ])
				])),
				this.addremove ? E('div', { 'class': 'cbi-section-create' }, [
					E('button', { 'class': 'cbi-button cbi-button-add', 'title': 'Add',
						'click': ui.createHandlerFn(this, 'handleAdd') }, [ 'Add' ])
				]) : ''
			]);
		}
	});

	var Value = Class.extend({
		__init__: function(map, section, option, title, description) {
			this.map = map;
			this.section = section;
			this.option = option;
			this.title = title;
			this.description = description;
			this.default = null;
			this.rmempty = true;
			this.optional = false;
			this.placeholder = null;
			this.maxlength = null;
			this.password = false;
		},
		cfgvalue: function(sid) { return uci.get(this.map.config, sid, this.option); },
		write: function(sid, value) { return uci.set(this.map.config, sid, this.option, value); },
		remove: function(sid) { return uci.unset(this.map.config, sid, this.option); },
		validate: function(sid, value) { return true; },
		widget: function(sid) { return document.getElementById('widget.' + cbid(this.map, sid, this.option)); },
		formvalue: function(sid) {
			var w = this.widget(sid);
			return w ? w.value : null;
		},
		checkValid: function(sid) {
			var w = this.widget(sid);
			if (!w)
				return true;
			var res = this.validate(sid, this.formvalue(sid));
			w.classList.toggle('cbi-input-invalid', res !== true);
			w.setAttribute('title', res === true ? '' : res);
			return res;
		},
		initial: function(sid) {
			var v = this.cfgvalue(sid);
			return v == null ? this.default : v;
		},
		renderWidget: function(sid) {
			var self = this, v = this.initial(sid);
			return E('input', {
				'type': this.password ? 'password' : 'text', 'class': 'cbi-input-text',
				'id': 'widget.' + cbid(this.map, sid, this.option), 'name': cbid(this.map, sid, this.option),
				'value': v == null ? '' : v, 'placeholder': this.placeholder, 'maxlength': this.maxlength,
				'input': function() { self.checkValid(sid); }
			});
		},
		parse: function(sid) {
			if (!this.widget(sid))
				return Promise.resolve(); /* not rendered: a row added since the last render */
			var valid = this.checkValid(sid);
			if (valid !== true)
				return Promise.reject(new TypeError('%s: %s'.format(this.title || this.option, valid)));
			var fval = this.formvalue(sid), cval = this.cfgvalue(sid);
			var empty = fval == null || fval === '' || (Array.isArray(fval) && !fval.length);
			if (!empty) {
				if (!isEqual(cval, fval))
					return Promise.resolve(this.write(sid, fval));
			}
			else if (this.rmempty || this.optional)
				return Promise.resolve(this.remove(sid));
			else if (!isEqual(cval, fval))
				return Promise.reject(new TypeError('%s: mandatory field'.format(this.title || this.option)));
			return Promise.resolve();
		}
	});

	var Flag = Value.extend({
		__init__: function() {
			Value.prototype.__init__.apply(this, arguments);
			this.enabled = '1';
			this.disabled = '0';
			this.default = this.disabled;
		},
		renderWidget: function(sid) {
			return E('input', {
				'type': 'checkbox', 'class': 'cbi-input-checkbox',
				'id': 'widget.' + cbid(this.map, sid, this.option), 'name': cbid(this.map, sid, this.option),
				'checked': this.initial(sid) == this.enabled
			});
		},
		formvalue: function(sid) {
			var w = this.widget(sid);
			return w ? (w.checked ? this.enabled : this.disabled) : null;
		},
		parse: function(sid) {
			if (!this.widget(sid))
				return Promise.resolve();
			var fval = this.formvalue(sid);
			if (fval == this.default && (this.optional || this.rmempty))
				return Promise.resolve(this.remove(sid));
			return Promise.resolve(this.write(sid, fval));
		}
	});

	var ListValue = Value.extend({
		__init__: function() {
			Value.prototype.__init__.apply(this, arguments);
			this.keylist = [];
			this.vallist = [];
		},
		value: function(key, label) {
			this.keylist.push(key);
			this.vallist.push(label == null ? key : label);
		},
		renderWidget: function(sid) {
			var self = this, v = this.initial(sid);
			return E('select', {
				'class': 'cbi-input-select', 'id': 'widget.' + cbid(this.map, sid, this.option),
				'name': cbid(this.map, sid, this.option), 'change': function() { self.checkValid(sid); }
			}, this.keylist.map(function(k, i) {
				return E('option', { 'value': k, 'selected': k == v }, [ self.vallist[i] ]);
			}));
		}
	});

	var form = { Map: Map, TypedSection: TypedSection, TableSection: TableSection,
		Value: Value, Flag: Flag, ListValue: ListValue };

	/* tools.widgets.NetworkSelect: checkboxes for the logical networks (a fixed list here,
	 * LuCI reads them from the network config). */
	var NETWORKS = [ 'lan', 'wan', 'guest' ];
	var NetworkSelect = Value.extend({
		renderWidget: function(sid) {
			var self = this, current = L.toArray(this.initial(sid));
			var names = NETWORKS.concat(current.filter(function(n) { return NETWORKS.indexOf(n) < 0; }));
			return E('div', { 'id': 'widget.' + cbid(this.map, sid, this.option), 'class': 'cbi-dropdown' },
				names.map(function(n) {
					return E('label', {}, [
						E('input', { 'type': 'checkbox', 'value': n, 'data-network': n, 'checked': current.indexOf(n) >= 0 }),
						' ' + n + ' '
					]);
				}));
		},
		formvalue: function(sid) {
			var w = this.widget(sid);
			if (!w)
				return null;
			var on = Array.prototype.slice.call(w.querySelectorAll('input:checked')).map(function(i) { return i.value; });
			return this.multiple ? on : (on[0] || '');
		}
	});

	/* ---- view ------------------------------------------------------------------------------- */
	var view = Class.extend({
		__init__: function() {
			var vp = document.getElementById('view'), self = this;
			dom.content(vp, E('div', { 'class': 'spinning' }, [ 'Loading view…' ]));
			return Promise.resolve(this.load()).then(function(data) {
				return self.render(data);
			}).then(function(nodes) {
				dom.content(vp, nodes);
				dom.append(vp, self.addFooter());
				shim.ready = true;
			}).catch(function(e) {
				shim.error = String(e && e.stack || e);
				dom.content(vp, E('pre', { 'class': 'alert-message error' }, [ shim.error ]));
			});
		},
		load: function() {},
		render: function() {},
		maps: function() {
			return Array.prototype.slice.call(document.querySelectorAll('#view .cbi-map'))
				.map(function(n) { return n.__map; });
		},
		handleSave: function(ev) {
			return Promise.all(this.maps().map(function(m) { return m.save(); }));
		},
		handleSaveApply: function(ev) {
			return this.handleSave(ev).then(function() { return ui.changes.apply(); });
		},
		handleReset: function(ev) {
			return Promise.all(this.maps().map(function(m) { return m.reset(); }));
		},
		addFooter: function() {
			var buttons = [];
			if (this.handleSaveApply)
				buttons.push(E('button', { 'class': 'cbi-button cbi-button-apply', 'id': 'footer-save-apply',
					'click': ui.createHandlerFn(this, 'handleSaveApply') }, [ 'Save & Apply' ]));
			if (this.handleSave)
				buttons.push(E('button', { 'class': 'cbi-button cbi-button-save', 'id': 'footer-save',
					'click': ui.createHandlerFn(this, 'handleSave') }, [ 'Save' ]));
			if (this.handleReset)
				buttons.push(E('button', { 'class': 'cbi-button cbi-button-reset', 'id': 'footer-reset',
					'click': ui.createHandlerFn(this, 'handleReset') }, [ 'Reset' ]));
			return E('div', { 'class': 'cbi-page-actions' }, buttons);
		}
	});

	/* ---- L and the module loader ------------------------------------------------------- */
	var modules = {
		baseclass: Class, view: view, form: form, uci: uci, rpc: rpc, ui: ui, poll: poll, dom: dom,
		'tools.widgets': { NetworkSelect: NetworkSelect }
	};

	var L = window.L = {
		Class: Class, dom: dom, ui: ui, env: {},
		isObject: function(v) { return v != null && typeof v === 'object'; },
		toArray: function(v) {
			if (v == null)
				return [];
			if (Array.isArray(v))
				return v;
			var s = String(v).trim();
			return s ? s.split(/\s+/) : [];
		},
		bind: function(fn, self) {
			var args = Array.prototype.slice.call(arguments, 2);
			return function() { return fn.apply(self, args.concat(Array.prototype.slice.call(arguments))); };
		},
		resolveDefault: function(p, def) { return Promise.resolve(p).catch(function() { return def; }); },
		url: function() { return '/' + Array.prototype.join.call(arguments, '/'); },
		error: function(type, fmt) { throw new Error(fmt); },
		raise: function(type, fmt) {
			throw new Error(String(fmt).format.apply(fmt, Array.prototype.slice.call(arguments, 2)));
		},
		require: function(name) {
			if (modules[name])
				return Promise.resolve(modules[name]);
			var url = '/luci-static/resources/' + name.replace(/\./g, '/') + '.js';
			return fetch(url).then(function(res) {
				if (!res.ok)
					throw new Error('cannot load ' + url + ': HTTP ' + res.status);
				return res.text();
			}).then(function(source) {
				/* The directive prologue: 'use strict'; 'require a'; 'require b.c as d'; */
				var deps = [], m, re = /^\s*(?:\/\/[^\n]*\n|\/\*[\s\S]*?\*\/)*\s*'([^']*)';/, rest = source;
				while ((m = re.exec(rest)) !== null) {
					var dm = /^require\s+([\w.]+)(?:\s+as\s+(\w+))?$/.exec(m[1]);
					if (dm)
						deps.push({ name: dm[1], as: dm[2] || dm[1] });
					else if (m[1] !== 'use strict')
						break;
					rest = rest.slice(m[0].length);
				}
				return Promise.all(deps.map(function(d) { return L.require(d.name); })).then(function(instances) {
					var factory = Function.apply(null, deps.map(function(d) { return d.as; })
						.concat([ source + '\n//# sourceURL=' + url ]));
					var Cls = factory.apply(window, instances);
					var instance = new Cls();
					modules[name] = instance;
					return instance;
				});
			});
		}
	};

	window.addEventListener('error', function(ev) { shim.errors.push(String(ev.message)); });
	window.addEventListener('unhandledrejection', function(ev) { shim.errors.push('unhandled: ' + String(ev.reason)); });
	document.addEventListener('DOMContentLoaded', function() {
		L.require(window.SHIM_VIEW || 'view.ksmbd').catch(function(e) { shim.error = String(e && e.stack || e); });
	});
})();
