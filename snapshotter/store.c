/*
 * The snapshotter's metadata in SQLite (root/metadata.db).
 *
 * Why SQLite rather than LMDB: both give atomic, durable transactions; SQLite adds
 * AUTOINCREMENT ids that are never reused (as containerd's bolt sequence), foreign keys and
 * indexes for the parent/child queries the overlay algorithms need, a built-in
 * integrity_check the crash test uses, and the sqlite3 shell for debugging a node. LMDB's
 * fixed map size and manual secondary indexes buy us nothing at a few thousand rows.
 *
 * Durability: WAL journal with synchronous=FULL, so a COMMIT is on disk (fsync'ed) when it
 * returns; every state change is one BEGIN IMMEDIATE ... COMMIT. One connection, serialised by
 * a mutex held from begin to commit/rollback.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc/cleanup.h"

#include "snapshotter/snap.h"

struct snap_store {
        sqlite3 *db;
        pthread_mutex_t lock;
};

static const char schema[] = "CREATE TABLE IF NOT EXISTS snapshots ("
                             " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                             " ns TEXT NOT NULL,"
                             " name TEXT NOT NULL,"
                             " parent_id INTEGER REFERENCES snapshots(id),"
                             " kind INTEGER NOT NULL,"
                             " flavor INTEGER NOT NULL DEFAULT 0,"
                             " created_ns INTEGER NOT NULL,"
                             " updated_ns INTEGER NOT NULL,"
                             " size INTEGER NOT NULL DEFAULT 0,"
                             " inodes INTEGER NOT NULL DEFAULT 0,"
                             " UNIQUE (ns, name));"
                             "CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id);"
                             "CREATE TABLE IF NOT EXISTS labels ("
                             " id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,"
                             " key TEXT NOT NULL,"
                             " value TEXT NOT NULL,"
                             " PRIMARY KEY (id, key));";

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int db_error(struct snap_store *st, struct cc_error **err, const char *what)
{
        int code = sqlite3_extended_errcode(st->db);
        int e = EIO;
        if ((code & 0xff) == SQLITE_FULL)
                e = ENOSPC;
        else if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
                e = EAGAIN;
        else if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY)
                e = EEXIST;
        return cc_error_set(err, e, "metadata: %s: %s", what, sqlite3_errmsg(st->db));
}

static int exec(struct snap_store *st, const char *sql, struct cc_error **err)
{
        if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
                return db_error(st, err, sql);
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize)
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

static int prepare(struct snap_store *st, const char *sql, sqlite3_stmt **ret,
                   struct cc_error **err)
{
        /* Statements are prepared per call: a few microseconds, and no cache to invalidate. */
        if (sqlite3_prepare_v2(st->db, sql, -1, ret, NULL) != SQLITE_OK)
                return db_error(st, err, "prepare");
        return 0;
}

int snap_store_open(const char *path, struct snap_store **ret, struct cc_error **err)
{
        struct snap_store *st = calloc(1, sizeof(*st));
        if (!st)
                return cc_error_set(err, ENOMEM, "out of memory");
        pthread_mutex_init(&st->lock, NULL);
        /* SQLITE_OPEN_EXRESCODE gives extended codes; FULLMUTEX since workers share it. */
        int rc = sqlite3_open_v2(path, &st->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                         SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_EXRESCODE,
                                 NULL);
        if (rc != SQLITE_OK) {
                int r = cc_error_set(err, EIO, "open %s: %s", path,
                                     st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
                snap_store_close(st);
                return r;
        }
        sqlite3_busy_timeout(st->db, 5000);
        int r;
        /* Small pages: each change touches a handful of b-tree pages, and every page goes
         * to the WAL and later to the database, so 1 KiB pages write a quarter of what the
         * 4 KiB default would (a guest pull writes only metadata). Effective on a new
         * database only. */
        if ((r = exec(st, "PRAGMA page_size=1024", err)) < 0 ||
            (r = exec(st, "PRAGMA journal_mode=WAL", err)) < 0 ||
            (r = exec(st, "PRAGMA synchronous=FULL", err)) < 0 ||
            (r = exec(st, "PRAGMA foreign_keys=ON", err)) < 0 || (r = exec(st, schema, err)) < 0 ||
            (r = snap_store_check(st, err)) < 0) {
                snap_store_close(st);
                return r;
        }
        *ret = st;
        return 0;
}

void snap_store_close(struct snap_store *st)
{
        if (!st)
                return;
        sqlite3_close_v2(st->db);
        pthread_mutex_destroy(&st->lock);
        free(st);
}

int snap_store_begin(struct snap_store *st, struct cc_error **err)
{
        pthread_mutex_lock(&st->lock);
        int r = exec(st, "BEGIN IMMEDIATE", err);
        if (r < 0)
                pthread_mutex_unlock(&st->lock);
        return r;
}

int snap_store_commit(struct snap_store *st, struct cc_error **err)
{
        int r = exec(st, "COMMIT", err);
        if (r < 0)
                sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        pthread_mutex_unlock(&st->lock);
        return r;
}

void snap_store_rollback(struct snap_store *st)
{
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        pthread_mutex_unlock(&st->lock);
}

static int load_labels(struct snap_store *st, int64_t id, struct snap_labels *ret,
                       struct cc_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "SELECT key, value FROM labels WHERE id = ?1 ORDER BY key", &s, err);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, id);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                if (snap_labels_set(ret, (const char *)sqlite3_column_text(s, 0),
                                    (const char *)sqlite3_column_text(s, 1)) < 0)
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        if (rc != SQLITE_DONE)
                return db_error(st, err, "read labels");
        return 0;
}

#define INFO_COLUMNS                                                                       \
        "s.id, s.name, COALESCE(p.name, ''), COALESCE(s.parent_id, 0), s.kind, s.flavor, " \
        "s.created_ns, s.updated_ns, s.size, s.inodes FROM snapshots s "                   \
        "LEFT JOIN snapshots p ON p.id = s.parent_id "

static int row_to_info(sqlite3_stmt *s, struct snap_info *info)
{
        *info = (struct snap_info){
                .id = sqlite3_column_int64(s, 0),
                .name = strdup((const char *)sqlite3_column_text(s, 1)),
                .parent = strdup((const char *)sqlite3_column_text(s, 2)),
                .parent_id = sqlite3_column_int64(s, 3),
                .kind = (enum snap_kind)sqlite3_column_int(s, 4),
                .flavor = (enum snap_flavor)sqlite3_column_int(s, 5),
                .created_ns = sqlite3_column_int64(s, 6),
                .updated_ns = sqlite3_column_int64(s, 7),
                .size = sqlite3_column_int64(s, 8),
                .inodes = sqlite3_column_int64(s, 9),
        };
        if (!info->name || !info->parent) {
                snap_info_clear(info);
                return -ENOMEM;
        }
        return 0;
}

static int get_one(struct snap_store *st, sqlite3_stmt *s, struct snap_info *ret,
                   struct cc_error **err, const char *what)
{
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return cc_error_set(err, ENOENT, "snapshot %s%sdoes not exist", what,
                                    *what ? " " : "");
        if (rc != SQLITE_ROW)
                return db_error(st, err, "read snapshot");
        struct snap_info info;
        if (row_to_info(s, &info) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        int r = load_labels(st, info.id, &info.labels, err);
        if (r < 0) {
                snap_info_clear(&info);
                return r;
        }
        *ret = info;
        return 0;
}

int snap_store_get(struct snap_store *st, const char *ns, const char *name, struct snap_info *ret,
                   struct cc_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "SELECT " INFO_COLUMNS "WHERE s.ns = ?1 AND s.name = ?2", &s, err);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
        return get_one(st, s, ret, err, name);
}

int snap_store_get_id(struct snap_store *st, int64_t id, struct snap_info *ret,
                      struct cc_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "SELECT " INFO_COLUMNS "WHERE s.id = ?1", &s, err);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, id);
        return get_one(st, s, ret, err, "(by id)");
}

static int write_labels(struct snap_store *st, int64_t id, const struct snap_labels *labels,
                        struct cc_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *del = NULL, *ins = NULL;
        int r = prepare(st, "DELETE FROM labels WHERE id = ?1", &del, err);
        if (r < 0)
                return r;
        sqlite3_bind_int64(del, 1, id);
        if (sqlite3_step(del) != SQLITE_DONE)
                return db_error(st, err, "delete labels");
        if (!labels)
                return 0;
        r = prepare(st, "INSERT OR REPLACE INTO labels (id, key, value) VALUES (?1, ?2, ?3)", &ins,
                    err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < labels->n; i++) {
                /* containerd's stores drop labels with empty values. */
                if (!*labels->v[i].value)
                        continue;
                sqlite3_reset(ins);
                sqlite3_bind_int64(ins, 1, id);
                sqlite3_bind_text(ins, 2, labels->v[i].key, -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 3, labels->v[i].value, -1, SQLITE_STATIC);
                if (sqlite3_step(ins) != SQLITE_DONE)
                        return db_error(st, err, "write label");
        }
        return 0;
}

int snap_store_insert(struct snap_store *st, const char *ns, const char *name, int64_t parent_id,
                      enum snap_kind kind, enum snap_flavor flavor,
                      const struct snap_labels *labels, int64_t *ret_id, struct cc_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st,
                        "INSERT INTO snapshots (ns, name, parent_id, kind, flavor, created_ns, "
                        "updated_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                        &s, err);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
        if (parent_id)
                sqlite3_bind_int64(s, 3, parent_id);
        else
                sqlite3_bind_null(s, 3);
        sqlite3_bind_int(s, 4, kind);
        sqlite3_bind_int(s, 5, flavor);
        sqlite3_bind_int64(s, 6, now_ns());
        if (sqlite3_step(s) != SQLITE_DONE) {
                if (sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_UNIQUE)
                        return cc_error_set(err, EEXIST, "snapshot %s: already exists", name);
                return db_error(st, err, "insert snapshot");
        }
        int64_t id = sqlite3_last_insert_rowid(st->db);
        r = write_labels(st, id, labels, err);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int snap_store_commit_active(struct snap_store *st, int64_t id, const char *name,
                             const struct snap_labels *labels, int64_t size, int64_t inodes,
                             struct cc_error **err)
{
        /* Same id (so the directory stays put), new name and kind: atomic, no moves. */
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st,
                        "UPDATE snapshots SET name = ?2, kind = ?3, size = ?4, inodes = ?5, "
                        "created_ns = ?6, updated_ns = ?6 WHERE id = ?1",
                        &s, err);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, SNAP_KIND_COMMITTED);
        sqlite3_bind_int64(s, 4, size);
        sqlite3_bind_int64(s, 5, inodes);
        sqlite3_bind_int64(s, 6, now_ns());
        if (sqlite3_step(s) != SQLITE_DONE) {
                if (sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_UNIQUE)
                        return cc_error_set(err, EEXIST, "snapshot %s: already exists", name);
                return db_error(st, err, "commit snapshot");
        }
        return write_labels(st, id, labels, err);
}

int snap_store_delete(struct snap_store *st, int64_t id, struct cc_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *c = NULL, *d = NULL;
        int r = prepare(st, "SELECT 1 FROM snapshots WHERE parent_id = ?1 LIMIT 1", &c, err);
        if (r < 0)
                return r;
        sqlite3_bind_int64(c, 1, id);
        int rc = sqlite3_step(c);
        if (rc == SQLITE_ROW)
                return cc_error_set(err, EBUSY, "cannot remove snapshot with child");
        if (rc != SQLITE_DONE)
                return db_error(st, err, "find children");
        r = prepare(st, "DELETE FROM snapshots WHERE id = ?1", &d, err);
        if (r < 0)
                return r;
        sqlite3_bind_int64(d, 1, id);
        if (sqlite3_step(d) != SQLITE_DONE)
                return db_error(st, err, "delete snapshot");
        return 0;
}

int snap_store_set_labels(struct snap_store *st, int64_t id, const struct snap_labels *labels,
                          struct cc_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "UPDATE snapshots SET updated_ns = ?2 WHERE id = ?1", &s, err);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, now_ns());
        if (sqlite3_step(s) != SQLITE_DONE)
                return db_error(st, err, "update snapshot");
        return write_labels(st, id, labels, err);
}

int snap_store_chain(struct snap_store *st, int64_t id, struct snap_info **ret, size_t *ret_n,
                     struct cc_error **err)
{
        struct snap_info *v = NULL;
        size_t n = 0;
        struct snap_info cur;
        int r = snap_store_get_id(st, id, &cur, err);
        if (r < 0)
                return r;
        int64_t next = cur.parent_id;
        snap_info_clear(&cur);
        while (next) {
                if (n > 4096) {
                        r = cc_error_set(err, ELOOP, "parent chain too long");
                        break;
                }
                struct snap_info *nv = realloc(v, (n + 1) * sizeof(*nv));
                if (!nv) {
                        r = cc_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                v = nv;
                r = snap_store_get_id(st, next, &v[n], err);
                if (r < 0)
                        break;
                next = v[n].parent_id;
                n++;
        }
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        snap_info_clear(&v[i]);
                free(v);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int snap_store_walk(struct snap_store *st, const char *ns, snap_store_walk_fn fn, void *userdata,
                    struct cc_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "SELECT " INFO_COLUMNS "WHERE s.ns = ?1 ORDER BY s.id", &s, err);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, ns, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                struct snap_info info;
                if (row_to_info(s, &info) < 0)
                        return cc_error_set(err, ENOMEM, "out of memory");
                r = load_labels(st, info.id, &info.labels, err);
                if (r == 0)
                        r = fn(&info, userdata);
                snap_info_clear(&info);
                if (r < 0)
                        return r;
        }
        if (rc != SQLITE_DONE)
                return db_error(st, err, "list snapshots");
        return 0;
}

int snap_store_ids(struct snap_store *st, int64_t **ret, size_t *ret_n, struct cc_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "SELECT id FROM snapshots ORDER BY id", &s, err);
        if (r < 0)
                return r;
        _cleanup_free_ int64_t *v = NULL;
        size_t n = 0, cap = 0;
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                if (n == cap) {
                        cap = cap ? cap * 2 : 64;
                        int64_t *nv = realloc(v, cap * sizeof(*nv));
                        if (!nv)
                                return cc_error_set(err, ENOMEM, "out of memory");
                        v = nv;
                }
                v[n++] = sqlite3_column_int64(s, 0);
        }
        if (rc != SQLITE_DONE)
                return db_error(st, err, "list ids");
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

int snap_store_check(struct snap_store *st, struct cc_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "PRAGMA integrity_check", &s, err);
        if (r < 0)
                return r;
        if (sqlite3_step(s) != SQLITE_ROW)
                return db_error(st, err, "integrity check");
        const char *res = (const char *)sqlite3_column_text(s, 0);
        if (!res || strcmp(res, "ok") != 0)
                return cc_error_set(err, EILSEQ, "metadata integrity check failed: %s",
                                    res ? res : "(null)");
        return 0;
}
