"""An OCI image layout written blob by blob: what the benchmarks' image builders
(img-pull-image.py, img-pull-big-image.py, snap-pull-image.py) share."""
import hashlib
import json
import os
import zlib

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


class Layout:
    def __init__(self, root):
        self.root = root
        self.diff_ids, self.layers = [], []
        os.makedirs(root + "/blobs/sha256")

    def blob(self, data):
        """Stores data as a blob: (digest, size)."""
        d = hashlib.sha256(data).hexdigest()
        with open("%s/blobs/sha256/%s" % (self.root, d), "wb") as f:
            f.write(data)
        return "sha256:" + d, len(data)

    def add_layer(self, diff_id, gz):
        """The next layer: gzip-compressed data whose uncompressed digest is diff_id."""
        d, s = self.blob(gz)
        self.diff_ids.append(diff_id)
        self.layers.append({"mediaType": LAYER_GZIP, "digest": d, "size": s})

    def add_tar(self, tar, level=6):
        """The next layer: a tar, gzip-compressed here."""
        z = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.add_layer("sha256:" + hashlib.sha256(tar).hexdigest(), z.compress(tar) + z.flush())

    def finish(self, config, tag="v1", oci_layout=True):
        """The image config (config plus the layers' rootfs), its manifest, index.json naming it
        tag, and the oci-layout file."""
        config = dict(config, rootfs={"type": "layers", "diff_ids": self.diff_ids})
        cd, cs = self.blob(json.dumps(config).encode())
        man = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST,
                          "config": {"mediaType": CONFIG, "digest": cd, "size": cs},
                          "layers": self.layers}).encode()
        md, ms = self.blob(man)
        with open(self.root + "/index.json", "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [{"mediaType": MANIFEST, "digest": md, "size": ms,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
        if oci_layout:
            with open(self.root + "/oci-layout", "w") as f:
                f.write('{"imageLayoutVersion":"1.0.0"}')
