#!/usr/bin/python3
"""A small CRI client for tests (Debian has no crictl).

Message classes are built at run time from protos/cri/api.proto: protoc-c (installed for the
build) writes a descriptor set, and python3-protobuf turns it into classes; python3-grpcio
carries the calls. Nothing generated is committed.

    cri.py --address /run/containerd/containerd.sock pull IMAGE [--annotation K=V ...]
    cri.py ... images | status IMAGE | rmi IMAGE | version
Prints the response as JSON; exits 1 with the gRPC status on error.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import grpc
from google.protobuf import descriptor_pb2, json_format, message_factory

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = os.path.join(HERE, "..", "..", "protos")


def load_messages():
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cri.pb")
        subprocess.run(["protoc-c", "-I" + PROTOS, "--include_imports",
                        "--descriptor_set_out=" + out, "cri/api.proto"], check=True)
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            fds.ParseFromString(f.read())
    return message_factory.GetMessages(list(fds.file))


def call(channel, msgs, service, method, req):
    resp_cls = msgs["runtime.v1.%sResponse" % method]
    fn = channel.unary_unary("/runtime.v1.%s/%s" % (service, method),
                             request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=resp_cls.FromString)
    return fn(req, timeout=120)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--timing", action="store_true",
                   help="print the RPC's own wall time (rpc_ms N) on stderr")
    sub = p.add_subparsers(dest="cmd", required=True)
    pull = sub.add_parser("pull")
    pull.add_argument("image")
    pull.add_argument("--annotation", action="append", default=[])
    sub.add_parser("images")
    st = sub.add_parser("status")
    st.add_argument("image")
    rm = sub.add_parser("rmi")
    rm.add_argument("image")
    sub.add_parser("version")
    a = p.parse_args()

    msgs = load_messages()
    channel = grpc.insecure_channel("unix://" + a.address)
    # Connect first, so --timing measures the call, not the dial.
    grpc.channel_ready_future(channel).result(timeout=30)
    t0 = time.monotonic()
    M = lambda n: msgs["runtime.v1." + n]()
    try:
        if a.cmd == "pull":
            req = M("PullImageRequest")
            req.image.image = a.image
            if a.annotation:
                for kv in a.annotation:
                    k, v = kv.split("=", 1)
                    req.sandbox_config.annotations[k] = v
                    req.image.annotations[k] = v
            resp = call(channel, msgs, "ImageService", "PullImage", req)
        elif a.cmd == "images":
            resp = call(channel, msgs, "ImageService", "ListImages", M("ListImagesRequest"))
        elif a.cmd == "status":
            req = M("ImageStatusRequest")
            req.image.image = a.image
            resp = call(channel, msgs, "ImageService", "ImageStatus", req)
        elif a.cmd == "rmi":
            req = M("RemoveImageRequest")
            req.image.image = a.image
            resp = call(channel, msgs, "ImageService", "RemoveImage", req)
        else:
            resp = call(channel, msgs, "RuntimeService", "Version", M("VersionRequest"))
    except grpc.RpcError as e:
        print("error: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
        return 1
    if a.timing:
        print("rpc_ms %d" % ((time.monotonic() - t0) * 1000), file=sys.stderr)
    print(json_format.MessageToJson(resp, preserving_proto_field_name=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
