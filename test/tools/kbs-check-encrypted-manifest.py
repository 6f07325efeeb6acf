#!/usr/bin/python3
# The encrypted image's manifest against the plain one. Used by test/integration/kbs-image-encrypt.sh:
# kbs-check-encrypted-manifest.py MANIFEST PLAIN_LAYOUT ENCRYPTED_LAYOUT
import json, os, sys
m = json.load(open(sys.argv[1]))
plain_index = json.load(open(os.path.join(sys.argv[2], "index.json")))
assert len(m["layers"]) == 2, m
for l in m["layers"]:
    assert l["mediaType"].endswith("+encrypted"), l
    a = l["annotations"]
    assert "org.opencontainers.image.enc.keys.provider.attestation-agent" in a
    assert "org.opencontainers.image.enc.pubopts" in a
    assert os.path.getsize(os.path.join(sys.argv[3], "blobs/sha256", l["digest"][7:])) == l["size"]
plain = json.load(open(os.path.join(sys.argv[2], "blobs/sha256",
                                    plain_index["manifests"][0]["digest"][7:])))
for l in plain["layers"]:
    assert not os.path.exists(os.path.join(sys.argv[3], "blobs/sha256", l["digest"][7:])), l
