/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A standalone driver for the libFuzzer targets, so their corpora replay as regression tests
 * in every build, without libFuzzer (systemd's fuzz-main.c idea).
 *
 *   fuzz_spec_replay FILE|DIR...
 *
 * Each FILE, and each regular file directly in each DIR (in name order), is passed to
 * LLVMFuzzerTestOneInput() once. A violated property aborts, naming the input first on
 * stderr, so a crash in CI says which file to look at. Exit status 0 when every input ran,
 * 1 when a file or directory could not be read or none was given.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        unsigned char *data = NULL;
        size_t len = 0, cap = 0, n;

        if (!f) {
                fprintf(stderr, "fuzz-replay: cannot open %s: %s\n", path, strerror(errno));
                return -1;
        }
        for (;;) {
                if (len == cap) {
                        unsigned char *p = realloc(data, cap ? cap * 2 : 4096);

                        if (!p) {
                                free(data);
                                fclose(f);
                                return -1;
                        }
                        data = p;
                        cap = cap ? cap * 2 : 4096;
                }
                n = fread(data + len, 1, cap - len, f);
                if (n == 0)
                        break;
                len += n;
        }
        if (ferror(f)) {
                fprintf(stderr, "fuzz-replay: cannot read %s\n", path);
                free(data);
                fclose(f);
                return -1;
        }
        fclose(f);
        fprintf(stderr, "fuzz-replay: %s (%zu bytes)\n", path, len);
        /* An exact-size copy, so ASan sees reads one past the end as libFuzzer would. */
        {
                unsigned char *exact = malloc(len ? len : 1);

                if (!exact) {
                        free(data);
                        return -1;
                }
                memcpy(exact, data, len);
                free(data);
                (void)LLVMFuzzerTestOneInput(exact, len);
                free(exact);
        }
        return 0;
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, unsigned *count)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        char **names = NULL;
        size_t n = 0, cap = 0;
        int r = 0;

        if (!d) {
                fprintf(stderr, "fuzz-replay: cannot open %s: %s\n", dir, strerror(errno));
                return -1;
        }
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                if (n == cap) {
                        char **p = realloc(names, (cap ? cap * 2 : 64) * sizeof(*p));

                        if (!p) {
                                r = -1;
                                break;
                        }
                        names = p;
                        cap = cap ? cap * 2 : 64;
                }
                {
                        size_t sz = strlen(dir) + strlen(e->d_name) + 2;

                        names[n] = malloc(sz);
                        if (!names[n]) {
                                r = -1;
                                break;
                        }
                        snprintf(names[n], sz, "%s/%s", dir, e->d_name);
                }
                n++;
        }
        closedir(d);
        if (n)
                qsort(names, n, sizeof(*names), cmp_names);
        for (size_t i = 0; i < n; i++) {
                struct stat st;

                if (r == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
                        if (run_file(names[i]) < 0)
                                r = -1;
                        else
                                (*count)++;
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv)
{
        unsigned count = 0;
        int status = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
                return 1;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "fuzz-replay: %s: %s\n", argv[i], strerror(errno));
                        status = 1;
                } else if (S_ISDIR(st.st_mode)) {
                        if (run_dir(argv[i], &count) < 0)
                                status = 1;
                } else if (run_file(argv[i]) < 0) {
                        status = 1;
                } else {
                        count++;
                }
        }
        printf("%u input(s) replayed\n", count);
        if (count == 0)
                status = 1;
        return status;
}
