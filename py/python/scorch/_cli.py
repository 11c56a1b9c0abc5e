"""The ``scorch`` command of the wheel: the same command line as the binary built
from source, run by the extension module in this process."""

from __future__ import annotations

import os
import shutil
import signal
import sys


def main() -> None:
    # What the binary sets before libtorch starts (src/infer/mod.rs,
    # init_threading), set here before libtorch is loaded at all: OpenMP reads it
    # when it starts. A value the user set wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("AOTI_RUNTIME_CHECK_INPUTS", "1")
    # Ctrl-C ends the command as it ends the binary, instead of waiting for Python
    # to see a KeyboardInterrupt after the run.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # The scheduler starts runs with this command, and crontab lines call it: this
    # console script, or (under `python -m scorch`) the one on the PATH.
    argv0 = sys.argv[0]
    if os.path.basename(argv0).startswith("scorch"):
        exe = argv0 if os.sep in argv0 else shutil.which(argv0)
    else:
        exe = shutil.which("scorch")
    from . import _ext

    code = _ext().main(["scorch", *sys.argv[1:]], os.path.abspath(exe) if exe else None)
    sys.stdout.flush()
    sys.exit(code)
