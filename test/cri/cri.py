#!/usr/bin/python3
"""A small CRI client for tests (Debian has no crictl).

Message classes are built at run time from protos/cri/api.proto: protoc-c (installed for the
build) writes a descriptor set, and python3-protobuf turns it into classes; python3-grpcio
carries the calls. Nothing generated is committed.

    cri.py --address /run/containerd/containerd.sock pull IMAGE [--annotation K=V ...]
    cri.py ... images | status IMAGE | rmi IMAGE | version
    cri.py ... runp [--runtime HANDLER] POD.json          -> RunPodSandbox (prints the pod id)
    cri.py ... create POD_ID CONTAINER.json POD.json      -> CreateContainer (prints the id)
    cri.py ... start ID | stop [--timeout S] ID | rm ID   -> Start/Stop/RemoveContainer
    cri.py ... stopp POD_ID | rmp POD_ID | inspectp POD_ID | netns POD_ID | pods | ps [--pod POD_ID]
    cri.py ... inspect ID                                 -> ContainerStatus
    cri.py ... exec-sync [--timeout S] ID CMD...          -> ExecSync; prints stdout/stderr,
                                                              exits with the command's code
    cri.py ... logs-path ID                               -> ContainerStatus.log_path
The JSON configs are PodSandboxConfig / ContainerConfig in proto3 JSON (field names as in
protos/cri/api.proto, e.g. "linux_"; json_format accepts both names and lowerCamel). A
container's host devices are ContainerConfig.devices: [{"container_path": "/dev/xvda",
"host_path": "/dev/loop3", "permissions": "r"}] (containerd's CRI puts them into linux.devices).
Prints the response as JSON (inspect/inspectp with zero values); exits 1 with the gRPC status on error.
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


RPC_TIMEOUT = 120


def call(channel, msgs, service, method, req):
    resp_cls = msgs["runtime.v1.%sResponse" % method]
    fn = channel.unary_unary("/runtime.v1.%s/%s" % (service, method),
                             request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=resp_cls.FromString)
    return fn(req, timeout=RPC_TIMEOUT)


def main():
    global RPC_TIMEOUT
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--timing", action="store_true",
                   help="print the RPC's own wall time (rpc_ms N) and its start and end "
                   "(rpc_start_ns / rpc_end_ns, CLOCK_REALTIME) on stderr")
    p.add_argument("--rpc-timeout", type=int, default=RPC_TIMEOUT,
                   help="seconds each RPC may take (a guest pull of a large image under TCG)")
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
    runp = sub.add_parser("runp")
    runp.add_argument("--runtime", default="")
    runp.add_argument("config")
    cr = sub.add_parser("create")
    cr.add_argument("pod")
    cr.add_argument("config")
    cr.add_argument("pod_config")
    for name in ("start", "rm", "inspect", "logs-path"):
        sub.add_parser(name).add_argument("id")
    sp = sub.add_parser("stop")
    sp.add_argument("--timeout", type=int, default=10)
    sp.add_argument("id")
    for name in ("stopp", "rmp", "inspectp", "netns"):
        sub.add_parser(name).add_argument("pod")
    sub.add_parser("pods")
    ps = sub.add_parser("ps")
    ps.add_argument("--pod", default="")
    ex = sub.add_parser("exec-sync")
    ex.add_argument("--timeout", type=int, default=60)
    ex.add_argument("id")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    a = p.parse_args()
    RPC_TIMEOUT = a.rpc_timeout

    msgs = load_messages()
    channel = grpc.insecure_channel("unix://" + a.address)
    # Connect first, so --timing measures the call, not the dial.
    grpc.channel_ready_future(channel).result(timeout=30)
    t0 = time.monotonic()
    start_ns = time.time_ns()
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
        elif a.cmd == "runp":
            req = M("RunPodSandboxRequest")
            json_format.Parse(open(a.config).read(), req.config)
            req.runtime_handler = a.runtime
            resp = call(channel, msgs, "RuntimeService", "RunPodSandbox", req)
        elif a.cmd == "create":
            req = M("CreateContainerRequest")
            req.pod_sandbox_id = a.pod
            json_format.Parse(open(a.config).read(), req.config)
            json_format.Parse(open(a.pod_config).read(), req.sandbox_config)
            resp = call(channel, msgs, "RuntimeService", "CreateContainer", req)
        elif a.cmd in ("start", "rm", "inspect", "logs-path"):
            method = {"start": "StartContainer", "rm": "RemoveContainer",
                      "inspect": "ContainerStatus", "logs-path": "ContainerStatus"}[a.cmd]
            req = M(method + "Request")
            req.container_id = a.id
            resp = call(channel, msgs, "RuntimeService", method, req)
            if a.cmd == "logs-path":
                print(resp.status.log_path)
                return 0
        elif a.cmd == "stop":
            req = M("StopContainerRequest")
            req.container_id = a.id
            req.timeout = a.timeout
            resp = call(channel, msgs, "RuntimeService", "StopContainer", req)
        elif a.cmd in ("stopp", "rmp", "inspectp"):
            method = {"stopp": "StopPodSandbox", "rmp": "RemovePodSandbox",
                      "inspectp": "PodSandboxStatus"}[a.cmd]
            req = M(method + "Request")
            req.pod_sandbox_id = a.pod
            resp = call(channel, msgs, "RuntimeService", method, req)
        elif a.cmd == "netns":
            # The pod's network namespace path, from the runtime spec containerd's CRI reports
            # in a verbose PodSandboxStatus (info["info"], JSON); "" when it has none.
            req = M("PodSandboxStatusRequest")
            req.pod_sandbox_id = a.pod
            req.verbose = True
            resp = call(channel, msgs, "RuntimeService", "PodSandboxStatus", req)
            info = json.loads(resp.info.get("info", "{}"))
            nss = info.get("runtimeSpec", {}).get("linux", {}).get("namespaces", [])
            print(next((n.get("path", "") for n in nss if n.get("type") == "network"), ""))
            return 0
        elif a.cmd == "pods":
            resp = call(channel, msgs, "RuntimeService", "ListPodSandbox",
                        M("ListPodSandboxRequest"))
        elif a.cmd == "ps":
            req = M("ListContainersRequest")
            if a.pod:
                req.filter.pod_sandbox_id = a.pod
            resp = call(channel, msgs, "RuntimeService", "ListContainers", req)
        elif a.cmd == "exec-sync":
            req = M("ExecSyncRequest")
            req.container_id = a.id
            req.cmd.extend(a.argv[1:] if a.argv[:1] == ["--"] else a.argv)
            req.timeout = a.timeout
            resp = call(channel, msgs, "RuntimeService", "ExecSync", req)
            sys.stdout.buffer.write(resp.stdout)
            sys.stdout.flush()
            sys.stderr.buffer.write(resp.stderr)
            return resp.exit_code
        else:
            resp = call(channel, msgs, "RuntimeService", "Version", M("VersionRequest"))
    except grpc.RpcError as e:
        print("error: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
        return 1
    if a.timing:
        print("rpc_ms %d" % ((time.monotonic() - t0) * 1000), file=sys.stderr)
        print("rpc_start_ns %d\nrpc_end_ns %d" % (start_ns, time.time_ns()), file=sys.stderr)
    # Status answers show zero values too (SANDBOX_READY and exit code 0 are proto3 defaults).
    print(json_format.MessageToJson(resp, preserving_proto_field_name=True,
                                    including_default_value_fields=a.cmd in ("inspect", "inspectp")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
