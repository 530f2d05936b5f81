"""`inherit_owner`: new files and directories take the owner of their parent directory."""

import os

import pytest
from handler_fixtures import HandlerEnv
from test_create import FILE_CREATE, FILE_DIRECTORY_FILE, ok_create



@pytest.mark.parametrize("inherit", [True, False])
def test_new_objects_take_the_parent_owner(tmp_path, inherit):
    assert os.geteuid() == 0, "chown to another owner needs root (the suite runs as root)"
    root = tmp_path / "s"
    (root / "home").mkdir(parents=True)
    os.chown(root / "home", 4321, 4321)
    env = HandlerEnv(str(root), inherit_owner=inherit)
    ok_create(env, "home\\f.txt", disposition=FILE_CREATE)
    ok_create(env, "home\\d", disposition=FILE_CREATE, options=FILE_DIRECTORY_FILE)
    ok_create(env, "top.txt", disposition=FILE_CREATE)
    want = 4321 if inherit else os.geteuid()
    assert os.stat(root / "home" / "f.txt").st_uid == want
    assert os.stat(root / "home" / "d").st_uid == want
    assert os.stat(root / "top.txt").st_uid == os.stat(root).st_uid
