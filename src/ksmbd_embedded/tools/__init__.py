"""ksmbd-tools compatible command-line entry points (installed as /usr/sbin/ksmbd.*).

``adduser.py`` ksmbd.adduser, ``control.py`` ksmbd.control, ``mountd.py`` ksmbd.mountd —
thin wrappers over pwddb.py, the pid file (``pid_file.py``) and the server's CLI.
"""
