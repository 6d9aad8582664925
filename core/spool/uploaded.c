/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry of uploaded names. See uploaded.h. Two intrusive hash tables over the same
 * entries (by relpath; by bucket and key) and a doubly linked age list, oldest first, for
 * forgetting when full. Lock: u->lock guards everything.
 */
#include "spool/uploaded.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BUCKETS 1024

struct ent {
        struct ent *by_name; /* hash chains */
        struct ent *by_key;
        struct ent *older, *newer; /* age list */
        uint64_t name_hash, key_hash;
        struct af_uploaded_entry pub; /* its strings point into s[] */
        char s[];
};

struct af_uploaded {
        pthread_mutex_t lock;
        size_t max, count, nbuckets;
        struct ent **names; /* nbuckets chains each */
        struct ent **keys;
        struct ent *oldest, *newest;
};

/* FNV-1a over @s and, if not NULL, a separator and @t. */
static uint64_t hash2(const char *s, const char *t)
{
        uint64_t h = 0xcbf29ce484222325ull;

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
        if (t) {
                h = (h ^ 0xff) * 0x100000001b3ull; /* a byte no bucket name holds */
                for (; *t; t++)
                        h = (h ^ (unsigned char)*t) * 0x100000001b3ull;
        }
        return h;
}

int af_uploaded_new(size_t max_entries, struct af_uploaded **ret)
{
        struct af_uploaded *u = calloc(1, sizeof(*u));

        if (!u)
                return -ENOMEM;
        pthread_mutex_init(&u->lock, NULL);
        u->max = max_entries ? max_entries : AF_UPLOADED_DEFAULT_MAX;
        u->nbuckets = MIN_BUCKETS;
        u->names = calloc(u->nbuckets, sizeof(*u->names));
        u->keys = calloc(u->nbuckets, sizeof(*u->keys));
        if (!u->names || !u->keys) {
                af_uploaded_free(u);
                return -ENOMEM;
        }
        *ret = u;
        return 0;
}

static struct ent *ent_of(struct af_uploaded_entry *e)
{
        return (struct ent *)(void *)((char *)e - offsetof(struct ent, pub));
}

void af_uploaded_entry_free(struct af_uploaded_entry *e)
{
        if (e)
                free(ent_of(e));
}

void af_uploaded_free(struct af_uploaded *u)
{
        struct ent *e, *next;

        if (!u)
                return;
        for (e = u->oldest; e; e = next) {
                next = e->newer;
                free(e);
        }
        free(u->names);
        free(u->keys);
        pthread_mutex_destroy(&u->lock);
        free(u);
}

static void link_locked(struct af_uploaded *u, struct ent *e)
{
        size_t n = (size_t)(e->name_hash % u->nbuckets), k = (size_t)(e->key_hash % u->nbuckets);

        e->by_name = u->names[n];
        u->names[n] = e;
        e->by_key = u->keys[k];
        u->keys[k] = e;
}

static void unlink_locked(struct af_uploaded *u, struct ent *e)
{
        struct ent **pp;

        for (pp = &u->names[e->name_hash % u->nbuckets]; *pp != e; pp = &(*pp)->by_name)
                ;
        *pp = e->by_name;
        for (pp = &u->keys[e->key_hash % u->nbuckets]; *pp != e; pp = &(*pp)->by_key)
                ;
        *pp = e->by_key;
        if (e->older)
                e->older->newer = e->newer;
        else
                u->oldest = e->newer;
        if (e->newer)
                e->newer->older = e->older;
        else
                u->newest = e->older;
        e->older = e->newer = NULL;
        u->count--;
}

/* Doubles the tables when they get crowded; on OOM the chains just grow longer. */
static void grow_locked(struct af_uploaded *u)
{
        size_t n = u->nbuckets * 2;
        struct ent **names, **keys;

        if (u->count < u->nbuckets)
                return;
        names = calloc(n, sizeof(*names));
        keys = calloc(n, sizeof(*keys));
        if (!names || !keys) {
                free(names);
                free(keys);
                return;
        }
        free(u->names);
        free(u->keys);
        u->names = names;
        u->keys = keys;
        u->nbuckets = n;
        for (struct ent *e = u->oldest; e; e = e->newer)
                link_locked(u, e);
}

static struct ent *find_locked(struct af_uploaded *u, const char *relpath, uint64_t h)
{
        for (struct ent *e = u->names[h % u->nbuckets]; e; e = e->by_name)
                if (e->name_hash == h && strcmp(e->pub.relpath, relpath) == 0)
                        return e;
        return NULL;
}

/* One allocation holding the entry and copies of its strings. */
static struct ent *ent_new(const struct af_uploaded_entry *src)
{
        const char *strs[4] = { src->relpath, src->bucket, src->key, src->etag ? src->etag : "" };
        size_t lens[4], total = 0;
        struct ent *e;
        char *p;

        for (int i = 0; i < 4; i++)
                total += (lens[i] = strlen(strs[i])) + 1;
        e = calloc(1, sizeof(*e) + total);
        if (!e)
                return NULL;
        e->pub = *src;
        p = e->s;
        for (int i = 0; i < 4; i++) {
                memcpy(p, strs[i], lens[i] + 1);
                strs[i] = p;
                p += lens[i] + 1;
        }
        e->pub.relpath = strs[0];
        e->pub.bucket = strs[1];
        e->pub.key = strs[2];
        e->pub.etag = strs[3];
        e->name_hash = hash2(src->relpath, NULL);
        e->key_hash = hash2(src->bucket, src->key);
        return e;
}

int af_uploaded_put(struct af_uploaded *u, const struct af_uploaded_entry *src)
{
        struct ent *e = ent_new(src), *old;

        if (!e)
                return -ENOMEM;
        pthread_mutex_lock(&u->lock);
        old = find_locked(u, e->pub.relpath, e->name_hash);
        if (old) {
                unlink_locked(u, old);
                free(old);
        }
        while (u->count >= u->max && u->oldest) {
                old = u->oldest;
                unlink_locked(u, old);
                free(old);
        }
        grow_locked(u);
        link_locked(u, e);
        e->older = u->newest;
        if (u->newest)
                u->newest->newer = e;
        else
                u->oldest = e;
        u->newest = e;
        u->count++;
        pthread_mutex_unlock(&u->lock);
        return 0;
}

int af_uploaded_take(struct af_uploaded *u, const char *relpath, struct af_uploaded_entry **ret)
{
        struct ent *e;

        pthread_mutex_lock(&u->lock);
        e = find_locked(u, relpath, hash2(relpath, NULL));
        if (e)
                unlink_locked(u, e);
        pthread_mutex_unlock(&u->lock);
        if (!e)
                return -ENOENT;
        *ret = &e->pub;
        return 0;
}

int af_uploaded_get(struct af_uploaded *u, const char *relpath, struct af_uploaded_entry **ret)
{
        struct ent *e, *c = NULL;

        pthread_mutex_lock(&u->lock);
        e = find_locked(u, relpath, hash2(relpath, NULL));
        if (e)
                c = ent_new(&e->pub);
        pthread_mutex_unlock(&u->lock);
        if (!e)
                return -ENOENT;
        if (!c)
                return -ENOMEM;
        *ret = &c->pub;
        return 0;
}

bool af_uploaded_has(struct af_uploaded *u, const char *relpath)
{
        bool has;

        pthread_mutex_lock(&u->lock);
        has = find_locked(u, relpath, hash2(relpath, NULL)) != NULL;
        pthread_mutex_unlock(&u->lock);
        return has;
}

bool af_uploaded_key_held(struct af_uploaded *u, const char *bucket, const char *key)
{
        uint64_t h = hash2(bucket, key);
        bool held = false;

        pthread_mutex_lock(&u->lock);
        for (struct ent *e = u->keys[h % u->nbuckets]; e && !held; e = e->by_key)
                held = e->key_hash == h && strcmp(e->pub.key, key) == 0 &&
                       strcmp(e->pub.bucket, bucket) == 0;
        pthread_mutex_unlock(&u->lock);
        return held;
}

size_t af_uploaded_count(struct af_uploaded *u)
{
        size_t n;

        pthread_mutex_lock(&u->lock);
        n = u->count;
        pthread_mutex_unlock(&u->lock);
        return n;
}

int af_uploaded_names(struct af_uploaded *u, char ***ret, size_t *ret_n)
{
        char **names;
        size_t n = 0;
        int r = 0;

        pthread_mutex_lock(&u->lock);
        names = calloc(u->count + 1, sizeof(*names));
        for (struct ent *e = u->oldest; names && e; e = e->newer) {
                names[n] = strdup(e->pub.relpath);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        pthread_mutex_unlock(&u->lock);
        if (!names)
                return -ENOMEM;
        if (r < 0) {
                af_uploaded_names_free(names, n);
                return r;
        }
        *ret = names;
        *ret_n = n;
        return 0;
}

void af_uploaded_names_free(char **names, size_t n)
{
        for (size_t i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
}
