"""Readers on Windows, made true by construction: the read commands work without POSIX.

Nobody here has Windows, so a fresh interpreter is made to look like one where it
matters: the POSIX-only modules (``fcntl``, ``resource``, ``termios``, ``grp``, ``pwd``...)
cannot be imported and the POSIX-only
``os`` names are gone, before anything of watcherd's is imported. In it, ``status``,
``tags``, ``find``, ``dupes`` and ``similar`` run on a real library (made by ``watcherd
scan`` beforehand, as a Linux host would), and a notebook reads the catalog with
sqlitedict. Any import of those modules, or use of those names, on the read path fails
the test with its traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import drop, encode, scene, write

# Runs in the fresh interpreter: take the POSIX-only pieces away, then read the library.
_WINDOWS_LIKE = r"""
import importlib.abc, json, os, sys

BLOCKED = {"fcntl", "resource", "termios", "grp", "pwd", "tty", "pty", "syslog", "crypt", "spwd", "nis", "readline"}

class NoPosix(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"no module named {name!r} (POSIX only: blocked by the Windows-readers test)")
        return None

for name in list(sys.modules):
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]
sys.meta_path.insert(0, NoPosix())
for name in ("O_NOFOLLOW", "O_DIRECTORY", "O_CLOEXEC", "O_NONBLOCK", "sched_setaffinity", "sched_getaffinity",
             "getuid", "geteuid", "getgid", "getegid", "getpgid", "killpg", "setsid", "nice", "fork",
             "fchmod", "fchown", "chown", "mkfifo", "getloadavg", "sync", "statvfs", "fstatvfs"):
    if hasattr(os, name):
        delattr(os, name)

root, target = sys.argv[1], sys.argv[2]
from watcherd.cli import main

out = {}
for command in (["status", root], ["tags", root], ["find", root, "--tag", "cats"],
                ["dupes", root, "--near", "10"], ["similar", root, target, "--distance", "10"]):
    import io, contextlib
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*command, "--json"])
    if code != 0:
        main([*command, "-v"])  # again, for the traceback on stderr
        sys.exit(f"watcherd {command[0]} exited {code}")
    out[command[0]] = {"code": code, "out": json.loads(buf.getvalue())}

from sqlitedict import SqliteDict
images = SqliteDict(os.path.join(root, ".watcherd", "catalog.sqlite"), tablename="images",
                    decode=json.loads, flag="r")
out["sqlitedict"] = sorted(r["path"] for r in images.values() if "cats" in r["tags"])
images.close()
out["posix_loaded"] = sorted(m for m in BLOCKED if m in sys.modules)
print(json.dumps(out))
"""


def test_read_commands_need_nothing_posix_only(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    for i, rel in enumerate(["cats/a.jpg", "cats/b.jpg", "dogs/c.jpg"]):
        drop(root / "thumbs" / rel, seed=i + 1)
    write(root / "thumbs" / "birds" / "d.png", encode(scene(seed=1), "PNG"))  # the same picture as cats/a.jpg
    scanned = subprocess.run(
        [sys.executable, "-m", "watcherd", "scan", str(root)], capture_output=True, text=True, timeout=120, check=False
    )
    assert scanned.returncode == 0, scanned.stderr
    target = drop(tmp_path / "query.jpg", seed=3)  # the same bytes as dogs/c.jpg

    proc = subprocess.run(
        [sys.executable, "-c", _WINDOWS_LIKE, str(root), str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {k: v["code"] for k, v in out.items() if isinstance(v, dict)} == dict.fromkeys(
        ("status", "tags", "find", "dupes", "similar"), 0
    )
    assert out["status"]["out"]["images"] == 3
    folders = {k: v for k, v in out["tags"]["out"].items() if "x" not in k}  # not the size tags
    assert sum(folders.values()) == 3 and folders["dogs"] == 1, folders  # one of cats/a.jpg and birds/d.png collided
    assert len(out["find"]["out"]) == folders["cats"] == len(out["sqlitedict"])
    assert len(out["dupes"]["out"]) == 1  # the collision
    assert out["similar"]["out"][0]["distance"] == 0
    assert out["similar"]["out"][0]["path"].startswith("thumbs/dogs/")
    # Catalog paths are POSIX, relative to the root, on every host.
    assert all(p.startswith("thumbs/cats/") and "\\" not in p for p in out["sqlitedict"])
    assert out["posix_loaded"] == []
