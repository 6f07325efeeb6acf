/*
 * cc-kbs sessions (ref 1.3): id = UUIDv4 in simple form, a 32-byte nonce, a fixed expiry set
 * at /auth (not extended by /attest), the token once attested. A chained hash table under one
 * mutex; expired sessions are dropped when touched and by a sweep at every /auth.
 */
#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kbs/kbs.h"

#define BUCKETS 4096

struct session {
        struct session *next;
        char id[33];
        enum kbs_tee tee;
        char nonce[64];
        enum kbs_session_state state;
        char *token;
        int64_t expires;
};

struct kbs_sessions {
        pthread_mutex_t lock;
        size_t max, count;
        int64_t timeout;
        struct session *buckets[BUCKETS];
};

static unsigned hash(const char *id)
{
        unsigned h = 2166136261u;
        for (; *id; id++)
                h = (h ^ (unsigned char)*id) * 16777619u;
        return h % BUCKETS;
}

int kbs_sessions_new(size_t max, int64_t timeout_s, struct kbs_sessions **ret)
{
        struct kbs_sessions *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        pthread_mutex_init(&t->lock, NULL);
        t->max = max;
        t->timeout = timeout_s;
        *ret = t;
        return 0;
}

static void session_free(struct session *s)
{
        free(s->token);
        free(s);
}

void kbs_sessions_free(struct kbs_sessions *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < BUCKETS; i++)
                for (struct session *s = t->buckets[i], *n; s; s = n) {
                        n = s->next;
                        session_free(s);
                }
        pthread_mutex_destroy(&t->lock);
        free(t);
}

static size_t sweep_locked(struct kbs_sessions *t, int64_t now)
{
        size_t n = 0;
        for (size_t i = 0; i < BUCKETS; i++)
                for (struct session **pp = &t->buckets[i]; *pp;) {
                        struct session *s = *pp;
                        if (s->expires <= now) {
                                *pp = s->next;
                                session_free(s);
                                t->count--;
                                n++;
                        } else {
                                pp = &s->next;
                        }
                }
        return n;
}

size_t kbs_sessions_sweep(struct kbs_sessions *t, int64_t now)
{
        pthread_mutex_lock(&t->lock);
        size_t n = sweep_locked(t, now);
        pthread_mutex_unlock(&t->lock);
        return n;
}

static void view(const struct session *s, struct kbs_session_view *v)
{
        memcpy(v->id, s->id, sizeof(v->id));
        v->tee = s->tee;
        memcpy(v->nonce, s->nonce, sizeof(v->nonce));
        v->state = s->state;
        v->token = s->token ? strdup(s->token) : NULL;
        v->expires = s->expires;
}

int kbs_session_create(struct kbs_sessions *t, enum kbs_tee tee, int64_t now,
                       struct kbs_session_view *ret)
{
        uint8_t uuid[16], nonce[KBS_NONCE_BYTES];
        if (RAND_bytes(uuid, sizeof(uuid)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1)
                return -EIO;
        uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* version 4 */
        uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        struct session *s = calloc(1, sizeof(*s));
        _cleanup_free_ char *hex = cc_hex(uuid, sizeof(uuid));
        _cleanup_free_ char *b64 = cc_b64_encode(nonce, sizeof(nonce), false);
        if (!s || !hex || !b64) {
                free(s);
                return -ENOMEM;
        }
        memcpy(s->id, hex, 33);
        snprintf(s->nonce, sizeof(s->nonce), "%s", b64);
        s->tee = tee;
        s->state = KBS_SESSION_AUTHED;
        s->expires = now + t->timeout;
        pthread_mutex_lock(&t->lock);
        if (t->count >= t->max)
                sweep_locked(t, now);
        if (t->count >= t->max) {
                pthread_mutex_unlock(&t->lock);
                session_free(s);
                return -EBUSY;
        }
        unsigned h = hash(s->id);
        s->next = t->buckets[h];
        t->buckets[h] = s;
        t->count++;
        view(s, ret);
        pthread_mutex_unlock(&t->lock);
        return 0;
}

int kbs_session_get(struct kbs_sessions *t, const char *id, int64_t now,
                    struct kbs_session_view *ret)
{
        if (strlen(id) != 32)
                return -ENOENT;
        pthread_mutex_lock(&t->lock);
        for (struct session **pp = &t->buckets[hash(id)]; *pp; pp = &(*pp)->next) {
                struct session *s = *pp;
                if (strcmp(s->id, id) != 0)
                        continue;
                if (s->expires <= now) {
                        *pp = s->next;
                        session_free(s);
                        t->count--;
                        break;
                }
                view(s, ret);
                pthread_mutex_unlock(&t->lock);
                return 0;
        }
        pthread_mutex_unlock(&t->lock);
        return -ENOENT;
}

int kbs_session_set_token(struct kbs_sessions *t, const char *id, const char *token)
{
        int r = -ENOENT;
        char *copy = strdup(token);
        if (!copy)
                return -ENOMEM;
        pthread_mutex_lock(&t->lock);
        for (struct session *s = t->buckets[hash(id)]; s; s = s->next)
                if (strcmp(s->id, id) == 0) {
                        free(s->token);
                        s->token = TAKE_PTR(copy);
                        s->state = KBS_SESSION_ATTESTED;
                        r = 0;
                        break;
                }
        pthread_mutex_unlock(&t->lock);
        free(copy);
        return r;
}
