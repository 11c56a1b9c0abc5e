"""Makes a folder holding torch and everything it requires, as installed in this
interpreter's environment, for a fresh venv to see through a .pth file: the wheel
test then takes torch from the build cache instead of downloading 2.7 GB, and
nothing else from it. The files are hard links (the same bytes under new paths,
so a process shows which copy it loaded); symbolic links where the cache is on
another file system.

    torch_farm.py OUT_DIR
"""

import importlib.metadata as md
import os
import shutil
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


mode = "hard links"


def place(src: str, dst: str) -> None:
    global mode
    try:
        if os.path.isdir(src):
            shutil.copytree(src, dst, symlinks=True, copy_function=os.link)
        else:
            os.link(src, dst)
    except OSError:
        shutil.rmtree(dst, ignore_errors=True)
        mode = "symbolic links"
        os.symlink(src, dst)


try:
    from packaging.requirements import Requirement
except ImportError:  # pip's copy
    from pip._vendor.packaging.requirements import Requirement


seen, todo = set(), [("torch", frozenset())]
while todo:
    name, extras = todo.pop()
    key = (name.lower().replace("_", "-"), extras)
    if key in seen:
        continue
    seen.add(key)
    dist = md.distribution(name)
    for line in dist.requires or []:
        req = Requirement(line)
        # What pip would install: markers evaluated for this machine and the
        # extras the parent asked for.
        wanted = req.marker is None or any(
            req.marker.evaluate({"extra": e}) for e in (extras or {""})
        )
        if not wanted:
            continue
        try:
            md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        todo.append((req.name, frozenset(req.extras)))
    base = dist.locate_file("")
    tops = {str(f).split("/", 1)[0] for f in dist.files or [] if not str(f).startswith("..")}
    for top in tops:
        if top.endswith(".pth") or top == "__pycache__":
            continue
        src, dst = os.path.join(base, top), os.path.join(out, top)
        if os.path.exists(src) and not os.path.lexists(dst):
            place(src, dst)
names = sorted({n for n, _ in seen})
print(len(names), "distributions as", mode + ":", ", ".join(names))
