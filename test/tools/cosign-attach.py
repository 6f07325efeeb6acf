#!/usr/bin/env python3
"""Pushes a sigstore (cosign-format) signature attachment for an image, without cosign.

Debian 12's skopeo cannot sign with sigstore keys, so the integration tests build the
attachment themselves: for each private key (PEM, signed with `openssl dgst -sha256 -sign`,
ASN.1 DER ECDSA as cosign does) one layer of media type
application/vnd.dev.cosign.simplesigning.v1+json holding the payload, with the base64
signature in the dev.cosignproject.cosign/signature annotation; a config naming the payload
digests; the manifest pushed as tag sha256-<hex>.sig in the image's repository.

usage: cosign-attach.py REGISTRY REPO MANIFEST_DIGEST IDENTITY KEY.pem [KEY.pem...]
       [--payload-digest D]   digest written in the payload (default: MANIFEST_DIGEST)
"""
import base64
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"


def push_blob(reg, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    req = urllib.request.Request(f"http://{reg}/v2/{repo}/blobs/uploads/", method="POST")
    with urllib.request.urlopen(req) as r:
        loc = r.headers["Location"]
    if loc.startswith("/"):
        loc = f"http://{reg}{loc}"
    sep = "&" if "?" in loc else "?"
    req = urllib.request.Request(f"{loc}{sep}digest={digest}", data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req) as r:
        if r.status != 201:
            sys.exit(f"blob upload: HTTP {r.status}")
    return digest


def sign(key, payload):
    with tempfile.NamedTemporaryFile() as f:
        f.write(payload)
        f.flush()
        der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, f.name],
                             check=True, capture_output=True).stdout
    return base64.b64encode(der).decode()


def main():
    args = sys.argv[1:]
    payload_digest = None
    if "--payload-digest" in args:
        i = args.index("--payload-digest")
        payload_digest = args[i + 1]
        del args[i:i + 2]
    if len(args) < 5:
        sys.exit(__doc__)
    reg, repo, digest, identity, keys = args[0], args[1], args[2], args[3], args[4:]
    payload = json.dumps({
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": payload_digest or digest},
            "type": "cosign container image signature",
        },
        "optional": {"creator": "cc test/tools/cosign-attach.py", "timestamp": int(time.time())},
    }, separators=(",", ":"), sort_keys=True).encode()
    pdigest = push_blob(reg, repo, payload)
    layers = [{"mediaType": MT_SIMPLESIGNING, "digest": pdigest, "size": len(payload),
               "annotations": {"dev.cosignproject.cosign/signature": sign(k, payload)}}
              for k in keys]
    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [pdigest] * len(keys)}},
                        separators=(",", ":")).encode()
    cdigest = push_blob(reg, repo, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                           "config": {"mediaType": MT_CONFIG, "digest": cdigest,
                                      "size": len(config)},
                           "layers": layers}, separators=(",", ":")).encode()
    tag = digest.replace(":", "-", 1) + ".sig"
    req = urllib.request.Request(f"http://{reg}/v2/{repo}/manifests/{tag}", data=manifest,
                                 method="PUT", headers={"Content-Type": MT_MANIFEST})
    with urllib.request.urlopen(req) as r:
        if r.status != 201:
            sys.exit(f"manifest upload: HTTP {r.status}")
    print(f"{repo}:{tag} {len(keys)} layers")


if __name__ == "__main__":
    main()
