from ksmbd_embedded.fs.short_names import is_8dot3, short_name


def test_valid_8dot3_names_are_their_own_short_name():
    assert short_name("hello.txt") == "HELLO.TXT"
    assert short_name("README") == "README"
    assert is_8dot3("A1234567.ABC")


def test_long_names_are_mangled_stably():
    a = short_name("a long file name.jpeg")
    assert a == short_name("a long file name.jpeg")
    base, ext = a.split(".")
    assert len(base) <= 8 and "~" in base and ext == "JPE"
    assert is_8dot3(a)


def test_different_long_names_differ():
    names = {short_name(f"document number {i}.docx") for i in range(200)}
    assert len(names) > 190


def test_odd_names():
    for name in (".bashrc", "many.dots.in.name", "ünïcödé.txt", "x" * 255, "a.b.c."):
        s = short_name(name)
        assert is_8dot3(s), (name, s)
