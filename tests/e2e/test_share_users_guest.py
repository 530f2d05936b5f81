"""A share's users list keeps guests out (issue 11, item 2).

An admin who names a share's users means those users: as with Samba's `valid users`, a guest
gets in only where guests are allowed and no users list leaves them out. The LuCI page ticks
"Allow guests" on every new share, so a share with `list users 'alice' 'bob'` and
`guest_ok 'yes'` is what users end up with; guests were admitted there, and could write.
"""

from __future__ import annotations

import os
import subprocess

from .harness import start_server
from .smbclient_tool import assert_ok, output, smbclient

SHARES = {
    # what the LuCI page writes for a new share with "Allowed users" filled in
    "team": {"read_only": "no", "guest_ok": "yes", "users": ["alice"]},
    "public": {"read_only": "no", "guest_ok": "yes"},
    # the guest account itself named in the list: guests are not left out (Samba too)
    "kiosk": {"read_only": "no", "guest_ok": "yes", "users": ["alice", "nobody"]},
}


def guest(port, share, commands, cwd, how):
    """smbclient as a guest: -N (the local login name, no password: a guest under
    map_to_guest bad_user), or an unknown user with some password (mapped to guest)."""
    env = dict(os.environ, USER="zed-local", LOGNAME="zed-local")
    args = ["-N"] if how == "-N" else ["-U", "nosuchuser%whatever"]
    return subprocess.run(
        ["smbclient", f"//127.0.0.1/{share}", "-p", str(port), "--configfile=/dev/null",
         "-c", commands, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


def test_users_list_refuses_guests_even_with_guest_ok(tmp_path):
    srv = start_server(tmp_path / "srv", shares=SHARES)
    work = tmp_path / "w"
    work.mkdir()
    (work / "f.txt").write_text("from a guest")
    team = srv.shares["team"]
    try:
        for how in ("-N", "unknown user"):
            result = guest(srv.port, "team", "put f.txt g.txt; ls", work, how)
            assert "NT_STATUS_ACCESS_DENIED" in output(result), (how, output(result))
            assert not (team / "g.txt").exists(), how
            # the same guest on a guest share without a users list: in, and may write
            assert_ok(guest(srv.port, "public", "put f.txt g.txt; ls", work, how))
            assert (srv.shares["public"] / "g.txt").read_text() == "from a guest"
            (srv.shares["public"] / "g.txt").unlink()
        # the listed user still gets in and writes; a user who is not listed does not
        assert_ok(smbclient(srv.port, "team", "put f.txt alice.txt", cwd=work))
        assert (team / "alice.txt").read_text() == "from a guest"
        assert "NT_STATUS_ACCESS_DENIED" in output(
            smbclient(srv.port, "team", "ls", user="bob", password="bob-pw"))
        # a list that names the guest account lets guests in
        assert_ok(guest(srv.port, "kiosk", "put f.txt k.txt", work, "-N"))
        assert (srv.shares["kiosk"] / "k.txt").exists()
        assert "refused on share 'team'" in srv.log()
    finally:
        assert srv.stop() == 0
    assert "Traceback" not in srv.log()
