#!/usr/bin/python3
# The snapshotter's List over its socket, backend names one per line (test/integration/snap-crash.sh):
# snap-list.py SOCKET
import os, subprocess, sys, tempfile
import grpc
from google.protobuf import descriptor_pb2, message_factory
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "s.pb")
    subprocess.run(["protoc-c", "-Iprotos", "--include_imports", "--descriptor_set_out=" + out,
                    "containerd/services/snapshots/v1/snapshots.proto"], check=True)
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(open(out, "rb").read())
M = message_factory.GetMessages(list(fds.file))
P = "containerd.services.snapshots.v1."
ch = grpc.insecure_channel("unix://" + sys.argv[1])
lst = ch.unary_stream("/" + P + "Snapshots/List",
                      request_serializer=lambda m: m.SerializeToString(),
                      response_deserializer=M[P + "ListSnapshotsResponse"].FromString)
req = M[P + "ListSnapshotsRequest"](snapshotter="cc-snapshotter")
for resp in lst(req, timeout=30):
    for i in resp.info:
        print(i.name, i.kind)
