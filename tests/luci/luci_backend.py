"""The server side of LuCI for the page test: static files, and rpcd's JSON-RPC `/ubus`.

- ``/`` is index.html (the LuCI stand-in page), ``/luci-static/resources/luci_shim.js`` the
  client API shim, every other ``/luci-static/...`` file comes from ``luci-app/htdocs``.
- ``POST /ubus/...`` takes JSON-RPC 2.0 ``call`` messages as rpcd does and checks them
  against the app's real ACL file (acl.d): ``ksmbd`` methods must be granted (else rpcd's
  "Access denied" error), and the ``uci`` object only reaches configs granted under
  ``uci`` (read for get, write for the rest).
- ``ksmbd`` calls go over the ubus wire to the real server through the ubusd stand-in
  (tests/e2e/fake_ubusd.py), as rpcd would forward them.
- ``uci`` get/add/set/delete work on a staged copy of the config file parsed with the
  project's uci.py; ``apply`` writes it (uci commit) and asks the server to reload, which is
  what procd's reload trigger on the ksmbd config does on a router.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ksmbd_embedded.uci import UciPackage, UciSection, export, parse_uci, section_names
from ksmbd_embedded.ubus import message as m

from tests.e2e.fake_ubusd import ubus_call

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HTDOCS = REPO / "luci-app" / "htdocs"
ACL_FILE = REPO / "luci-app/root/usr/share/rpcd/acl.d/luci-app-ksmbd-embedded.json"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "application/javascript; charset=utf-8",
          ".json": "application/json", ".css": "text/css"}


class Acl:
    """One rpcd ACL file: which ubus methods and uci configs a session may use."""

    def __init__(self, path: Path) -> None:
        groups = json.loads(path.read_text())
        self.ubus: dict[str, set[str]] = {}
        self.uci = {"read": set(), "write": set()}
        for group in groups.values():
            for mode in ("read", "write"):
                grant = group.get(mode, {})
                for obj, methods in grant.get("ubus", {}).items():
                    self.ubus.setdefault(obj, set()).update(methods)
                self.uci[mode].update(grant.get("uci", []))

    def allows_ubus(self, obj: str, method: str) -> bool:
        return method in self.ubus.get(obj, ()) or "*" in self.ubus.get(obj, ())

    def allows_uci(self, config: str, write: bool) -> bool:
        return config in self.uci["write" if write else "read"]


class UciStore:
    """rpcd's uci object over one config file: changes are staged until apply."""

    def __init__(self, config: str, path: Path) -> None:
        self.config = config
        self.path = path
        self.revert()

    def revert(self) -> None:
        pkg = parse_uci(self.path.read_text(), self.config, str(self.path))
        self.sections: list[tuple[str, UciSection]] = list(
            zip(section_names(pkg, False), pkg.sections))

    def _find(self, name: str) -> UciSection | None:
        return next((sec for n, sec in self.sections if n == name), None)

    def get(self) -> dict:
        values = {}
        for index, (name, sec) in enumerate(self.sections):
            values[name] = {".anonymous": sec.name is None, ".type": sec.type, ".name": name,
                            ".index": index, **{k: (list(v) if isinstance(v, list) else v)
                                                for k, v in sec.options.items()}}
        return {"values": values}

    @staticmethod
    def _set_values(sec: UciSection, values: dict) -> None:
        for key, value in values.items():
            if isinstance(value, list):
                sec.options[key] = [str(v) for v in value]
            elif value in (None, ""):
                sec.options.pop(key, None)
            else:
                sec.options[key] = str(value)

    def add(self, stype: str, values: dict) -> dict:
        sec = UciSection(stype, None)
        self._set_values(sec, values or {})
        taken = {n for n, _ in self.sections}
        probe = UciPackage(self.config, [s for _, s in self.sections] + [sec])
        name = base = section_names(probe, False)[-1]
        bump = 0
        while name in taken:  # after a delete the position's name may be in use: next number
            bump += 1
            name = f"cfg{(int(base[3:5], 16) + bump) & 0xFF:02x}{base[5:]}"
        self.sections.append((name, sec))
        return {"section": name}

    def set(self, section: str, values: dict) -> int:
        sec = self._find(section)
        if sec is None:
            return m.UBUS_STATUS_NOT_FOUND
        self._set_values(sec, values or {})
        return m.UBUS_STATUS_OK

    def delete(self, section: str, options: list | None) -> int:
        sec = self._find(section)
        if sec is None:
            return m.UBUS_STATUS_NOT_FOUND
        if options is None:
            self.sections = [(n, s) for n, s in self.sections if s is not sec]
        else:
            for opt in options:
                sec.options.pop(opt, None)
        return m.UBUS_STATUS_OK

    def commit(self) -> None:
        text = export(UciPackage(self.config, [s for _, s in self.sections]))
        self.path.write_text(text.split("\n", 1)[1])  # what `uci commit` writes: no package line


class LuciBackend:
    """Serve the page on 127.0.0.1:port; ``calls`` records (object, method, status)."""

    def __init__(self, port: int, uci_path: Path, ubus_socket: str,
                 acl_path: Path = ACL_FILE) -> None:
        self.port = port
        self.ubus_socket = ubus_socket
        self.acl = Acl(acl_path)
        self.store = UciStore("ksmbd", uci_path)
        self.calls: list[tuple[str, str, int]] = []
        self.call_args: list[tuple[str, dict]] = []  # (ksmbd method, its arguments)
        self.denied: list[tuple[str, str]] = []
        self.reloads: list[tuple[int, dict | None]] = []
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> LuciBackend:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path in ("/", "/index.html"):
                    file = HERE / "index.html"
                elif path == "/luci-static/resources/luci_shim.js":
                    file = HERE / "luci_shim.js"
                elif path.startswith("/luci-static/"):
                    file = (HTDOCS / path.lstrip("/")).resolve()
                    if HTDOCS.resolve() not in file.parents:
                        file = None
                else:
                    file = None
                if file is None or not file.is_file():
                    self._send(404, b"not found", "text/plain")
                    return
                ctype = _TYPES.get(file.suffix, "application/octet-stream")
                self._send(200, file.read_bytes(), ctype)

            def do_POST(self) -> None:
                if not self.path.startswith("/ubus"):
                    self._send(404, b"not found", "text/plain")
                    return
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    msg = json.loads(self.rfile.read(length))
                    reply = backend.jsonrpc(msg)
                except (ValueError, KeyError, TypeError, IndexError) as exc:
                    reply = {"jsonrpc": "2.0", "id": None,
                             "error": {"code": -32600, "message": f"Invalid request: {exc}"}}
                self._send(200, json.dumps(reply).encode(), "application/json")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, name="luci-backend", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    # -- JSON-RPC -------------------------------------------------------------------------

    def jsonrpc(self, msg: dict) -> dict:
        out = {"jsonrpc": "2.0", "id": msg.get("id")}
        if msg.get("method") != "call":
            out["error"] = {"code": -32601, "message": "Method not found"}
            return out
        _sid, obj, method, args = msg["params"]
        if obj == "uci":
            result = self.uci_call(method, args or {})
        elif self.acl.allows_ubus(obj, method):
            self.call_args.append((method, dict(args or {})))
            status, data = ubus_call(self.ubus_socket, obj, method, args or {})
            result = [status, data] if status == 0 and data is not None else [status]
        else:
            result = None
        if result is None:
            self.denied.append((obj, method))
            out["error"] = {"code": -32002, "message": "Access denied"}
            return out
        self.calls.append((obj, method, result[0]))
        out["result"] = result
        return out

    def uci_call(self, method: str, args: dict) -> list | None:
        with self.lock:
            if method == "apply":
                self.store.commit()
                # procd: the ksmbd config changed -> /etc/init.d/ksmbd reload -> ubus reload
                self.reloads.append(ubus_call(self.ubus_socket, "ksmbd", "reload", {}))
                return [0]
            config = args.get("config")
            if not self.acl.allows_uci(config, write=method != "get"):
                return None
            if config != self.store.config:
                return [m.UBUS_STATUS_NOT_FOUND]
            if method == "get":
                return [0, self.store.get()]
            if method == "add":
                return [0, self.store.add(args["type"], args.get("values", {}))]
            if method == "set":
                return [self.store.set(args["section"], args.get("values", {}))]
            if method == "delete":
                return [self.store.delete(args["section"], args.get("options"))]
            return [m.UBUS_STATUS_METHOD_NOT_FOUND]
