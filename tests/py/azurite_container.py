"""Creates a blob container on an Azurite emulator (the well-known dev account),
signing the request with SharedKey as any Azure client would.

    azurite_container.py PORT CONTAINER
"""

import base64
import email.utils
import hashlib
import hmac
import http.client
import sys

port, container = int(sys.argv[1]), sys.argv[2]
account = "devstoreaccount1"
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
date = email.utils.formatdate(usegmt=True)
version = "2021-08-06"
# VERB, 11 empty standard headers, canonical x-ms headers, canonical resource
# (path-style emulator URLs carry the account twice).
string_to_sign = (
    "PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n" + f"/{account}/{account}/{container}\nrestype:container"
)
sig = base64.b64encode(hmac.new(key, string_to_sign.encode(), hashlib.sha256).digest()).decode()
c = http.client.HTTPConnection("127.0.0.1", port)
c.putrequest("PUT", f"/{account}/{container}?restype=container", skip_accept_encoding=True)
for k, v in {"x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}", "Content-Length": "0"}.items():
    c.putheader(k, v)
c.endheaders()
r = c.getresponse()
body = r.read()
if r.status not in (201, 409):
    sys.exit(f"create container failed: {r.status} {body[:300]!r}")
