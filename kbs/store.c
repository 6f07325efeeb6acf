/*
 * cc-kbs storage in SQLite: resources (path -> bytes) and the resource policy text. One
 * connection in serialized mode is shared by the server's threads; WAL keeps readers from
 * blocking on the admin's writes.
 */
#include <errno.h>
#include <sqlite3.h>
#include <string.h>

#include "kbs/kbs.h"

struct kbs_store {
        sqlite3 *db;
};

static const char schema[] =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE IF NOT EXISTS resource (path TEXT PRIMARY KEY, value BLOB NOT NULL, "
        "  updated INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS policy (id TEXT PRIMARY KEY, text TEXT NOT NULL, "
        "  updated INTEGER NOT NULL);";

bool kbs_resource_path_valid(const char *path)
{
        int segs = 0;
        const char *p = path;
        for (;;) {
                size_t n = strcspn(p, "/");
                if (n == 0 || n > 255 || p[0] == '.')
                        return false;
                for (size_t i = 0; i < n; i++) {
                        char c = p[i];
                        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
                                return false;
                }
                segs++;
                if (!p[n])
                        break;
                p += n + 1;
        }
        return segs == 3;
}

static int db_error(struct kbs_store *s, struct cc_error **err, const char *what)
{
        return cc_error_set(err, EIO, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

void kbs_store_close(struct kbs_store *s)
{
        if (!s)
                return;
        sqlite3_close(s->db);
        free(s);
}

int kbs_store_open(const char *path, struct kbs_store **ret, struct cc_error **err)
{
        struct kbs_store *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        int rc = sqlite3_open_v2(path, &s->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 NULL);
        if (rc != SQLITE_OK) {
                cc_error_set(err, EIO, "store %s: %s", path,
                             s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                kbs_store_close(s);
                return -EIO;
        }
        sqlite3_busy_timeout(s->db, 5000);
        if (sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
                int r = db_error(s, err, path);
                kbs_store_close(s);
                return r;
        }
        *ret = s;
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize)

static int exec_write(struct kbs_store *s, const char *sql, const char *a, const void *b,
                      size_t blen, bool text, struct cc_error **err)
{
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
                return db_error(s, err, "prepare");
        sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
        if (b) {
                if (text)
                        sqlite3_bind_text(st, 2, b, (int)blen, SQLITE_STATIC);
                else
                        sqlite3_bind_blob(st, 2, b, (int)blen, SQLITE_STATIC);
        }
        if (sqlite3_step(st) != SQLITE_DONE)
                return db_error(s, err, "write");
        return sqlite3_changes(s->db);
}

int kbs_store_put(struct kbs_store *s, const char *path, const uint8_t *data, size_t len,
                  struct cc_error **err)
{
        /* A zero-length blob must still be a blob, not NULL. */
        static const uint8_t empty[1];
        int r = exec_write(s,
                           "INSERT OR REPLACE INTO resource (path, value, updated) "
                           "VALUES (?1, ?2, strftime('%s','now'))",
                           path, len ? (const void *)data : (const void *)empty, len, false, err);
        return r < 0 ? r : 0;
}

int kbs_store_delete(struct kbs_store *s, const char *path, struct cc_error **err)
{
        int r = exec_write(s, "DELETE FROM resource WHERE path = ?1", path, NULL, 0, false, err);
        return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

static int read_one(struct kbs_store *s, const char *sql, const char *key, uint8_t **data,
                    size_t *len, struct cc_error **err)
{
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
                return db_error(s, err, "prepare");
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return db_error(s, err, "read");
        int n = sqlite3_column_bytes(st, 0);
        const void *v = sqlite3_column_blob(st, 0);
        uint8_t *out = malloc((size_t)n + 1);
        if (!out)
                return -ENOMEM;
        if (n)
                memcpy(out, v, (size_t)n);
        out[n] = 0;
        *data = out;
        *len = (size_t)n;
        return 0;
}

int kbs_store_get(struct kbs_store *s, const char *path, uint8_t **data, size_t *len,
                  struct cc_error **err)
{
        return read_one(s, "SELECT value FROM resource WHERE path = ?1", path, data, len, err);
}

int kbs_store_policy_get(struct kbs_store *s, char **text, struct cc_error **err)
{
        size_t len;
        return read_one(s, "SELECT text FROM policy WHERE id = ?1", "resource-policy",
                        (uint8_t **)text, &len, err);
}

int kbs_store_policy_set(struct kbs_store *s, const char *text, struct cc_error **err)
{
        int r = exec_write(s,
                           "INSERT OR REPLACE INTO policy (id, text, updated) "
                           "VALUES (?1, ?2, strftime('%s','now'))",
                           "resource-policy", text, strlen(text), true, err);
        return r < 0 ? r : 0;
}
