#!/usr/bin/python3
# Prints True when FILE contains the bytes HEX (mmap, for large disk images), else False.
# Used by test/integration/agent-vm-trusted.sh: file-contains-hex.py FILE HEX
import mmap, sys
with open(sys.argv[1], "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    print(m.find(bytes.fromhex(sys.argv[2])) >= 0)
