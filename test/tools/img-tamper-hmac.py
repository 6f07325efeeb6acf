#!/usr/bin/python3
# Re-pushes enc/rsa:v1 as enc/rsa:badhmac with one bit of each layer's pubopts HMAC flipped.
# Used by test/integration/img-encrypted.sh: img-tamper-hmac.py REGISTRY
import base64, json, sys, urllib.request
reg = sys.argv[1]
mt = "application/vnd.oci.image.manifest.v1+json"
m = json.load(urllib.request.urlopen(urllib.request.Request(
    "http://%s/v2/enc/rsa/manifests/v1" % reg, headers={"Accept": mt})))
for l in m["layers"]:
    a = l["annotations"]
    pub = json.loads(base64.b64decode(a["org.opencontainers.image.enc.pubopts"]))
    h = bytearray(base64.b64decode(pub["hmac"])); h[0] ^= 1
    pub["hmac"] = base64.b64encode(bytes(h)).decode()
    a["org.opencontainers.image.enc.pubopts"] = base64.b64encode(json.dumps(pub).encode()).decode()
urllib.request.urlopen(urllib.request.Request("http://%s/v2/enc/rsa/manifests/badhmac" % reg,
    data=json.dumps(m).encode(), method="PUT", headers={"Content-Type": mt}))
