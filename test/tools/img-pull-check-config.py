#!/usr/bin/python3
# The config.json cc-image-pull wrote has the image's entrypoint, command, env and user.
# Used by test/integration/img-pull.sh: img-pull-check-config.py CONFIG_JSON
import json, sys
c = json.load(open(sys.argv[1]))["config"]
assert c["Entrypoint"] == ["/bin/app"], c
assert c["Cmd"] == ["--help"], c
assert "FOO=bar" in c["Env"], c
assert c["WorkingDir"] == "/srv" and c["User"] == "1000:1000", c
