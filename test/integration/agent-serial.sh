#!/usr/bin/env bash
# The virtio-serial transport on the host: the agent serves a pty as if it were the
# agent.channel.0 port (no connection boundaries, like the real port), and a raw ttrpc client
# written here speaks to it. Checks: a client is served; a second client that starts over at
# stream id 1 on the same byte stream, without any disconnect the agent could see, gets its own
# answers (the agent starts a new session); a pipelined burst of requests is answered in full;
# an oversized frame is answered on its own stream id only (its payload is skipped, not read as
# frames); a client that leaves mid-frame does not hold up the next one.
set -u
BUILD=${BUILD:-build}
command -v python3 >/dev/null || { echo "needs python3"; exit 77; }
tmp=$(mktemp -d /tmp/agent-serial.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
BUILD=$BUILD TMPDIR=$tmp python3 test/tools/agent-serial-client.py
