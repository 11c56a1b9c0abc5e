"""What a wheel's platform tag promises, against what its extension needs.

Prints one JSON object: the wheel's platform tag (from its file name), the tag
auditwheel derives from the extension's versioned symbols (`auditwheel show`,
libtorch left unresolved: it comes from the torch package), and the shared
libraries the extension NEEDs (readelf -d).

    python tests/py/wheel_platform.py WHEEL
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile

wheel = sys.argv[1]
tag = os.path.basename(wheel)[: -len(".whl")].split("-")[-1]
env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
show = subprocess.run(
    [sys.executable, "-m", "auditwheel", "show", wheel], capture_output=True, text=True, env=env
)
if show.returncode != 0:
    sys.exit(f"auditwheel show failed: {show.stdout}{show.stderr}")
text = " ".join(show.stdout.split())
m = re.search(r'constrains the platform tag to "([a-z0-9_]+)"', text)
with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if re.match(r"scorch/_native.*\.so$", n)]
    if len(names) != 1:
        sys.exit(f"expected one extension module in {wheel}, found {names}")
    ext = z.extract(names[0], tmp)
    dynamic = subprocess.run(["readelf", "-d", ext], capture_output=True, text=True, check=True).stdout
needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
print(json.dumps({"tag": tag, "symbols_allow": m.group(1) if m else None, "needed": needed, "show": text}))
