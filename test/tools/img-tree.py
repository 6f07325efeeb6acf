#!/usr/bin/python3
# Compares two root filesystems (path, type, mode, uid, gid, content or link target, hardlink
# groups); used by img_compare in test/integration/img-lib.sh: img-tree.py OURS UMOCI
import hashlib, os, stat, sys
def walk(root):
    out = {}
    inodes = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            m = st.st_mode
            if stat.S_ISREG(m):
                h = hashlib.sha256(open(p, 'rb').read()).hexdigest()
                kind = 'f ' + h
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISDIR(m):
                kind = 'd'
            elif stat.S_ISLNK(m):
                kind = 'l ' + os.readlink(p)
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                kind = 'c %d:%d' % (os.major(st.st_rdev), os.minor(st.st_rdev))
            else:
                kind = 'o'
            mode = stat.S_IMODE(m) if not stat.S_ISLNK(m) else 0
            out[rel] = '%s %o %d:%d' % (kind, mode, st.st_uid, st.st_gid)
    links = sorted(' = '.join(sorted(v)) for v in inodes.values() if len(v) > 1)
    return out, links
a, la = walk(sys.argv[1])
b, lb = walk(sys.argv[2])
bad = 0
for k in sorted(set(a) | set(b)):
    if a.get(k) != b.get(k):
        print('DIFF %s: ours=%s umoci=%s' % (k, a.get(k), b.get(k)))
        bad += 1
if la != lb:
    print('HARDLINKS ours=%s umoci=%s' % (la, lb))
    bad += 1
print('%d entries compared, %d differences' % (len(set(a) | set(b)), bad))
sys.exit(1 if bad else 0)
