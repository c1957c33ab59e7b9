/*
 * corpus.c - list the demo corpus (Debian's English fortunes files).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "corpus.h"

static const char hint[] = "install Debian's fortunes package (make deps) or set "
                           "SCALAR_FORTUNES_DIR";

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void cli_corpus_paths_free(char **paths, size_t n)
{
    if (!paths)
        return;
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

/* "dir/name" if it names a regular file (not a symlink), else NULL with
 * *skip set; NULL with *skip clear means out of memory. */
static char *corpus_file(const char *dir, const char *name, int *skip)
{
    struct stat sb;
    *skip = 1;
    if (strchr(name, '.')) /* *.dat, *.u8, ".", "..", hidden files */
        return NULL;
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    char *path = malloc(len);
    if (!path) {
        *skip = 0;
        return NULL;
    }
    snprintf(path, len, "%s/%s", dir, name);
    if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        free(path);
        return NULL;
    }
    return path;
}

static int list_dir(DIR *d, const char *dir, const char *cmd, char ***paths, size_t *n)
{
    size_t cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        int skip;
        char *path = corpus_file(dir, e->d_name, &skip);
        if (!path && skip)
            continue;
        if (path && *n == cap) {
            size_t new_cap = cap ? 2 * cap : 64;
            char **grown = realloc(*paths, new_cap * sizeof *grown);
            if (!grown) {
                free(path);
                path = NULL;
            } else {
                *paths = grown;
                cap = new_cap;
            }
        }
        if (!path) {
            fprintf(stderr, "scalar: %s: out of memory listing %s\n", cmd, dir);
            return CLI_FAIL;
        }
        (*paths)[(*n)++] = path;
    }
    if (*n == 0) {
        fprintf(stderr, "scalar: %s: no fortunes files (names without an extension) in %s; "
                "%s\n", cmd, dir, hint);
        return CLI_FAIL;
    }
    qsort(*paths, *n, sizeof **paths, by_name);
    return CLI_OK;
}

int cli_default_corpus_paths(const char *cmd, char ***paths, size_t *n)
{
    const char *dir = getenv("SCALAR_FORTUNES_DIR");
    if (!dir || !*dir)
        dir = CLI_FORTUNES_DIR;
    *paths = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "scalar: %s: cannot open the fortunes folder %s: %s; %s\n", cmd, dir,
                strerror(errno), hint);
        return CLI_FAIL;
    }
    int rc = list_dir(d, dir, cmd, paths, n);
    closedir(d);
    if (rc != CLI_OK) {
        cli_corpus_paths_free(*paths, *n);
        *paths = NULL;
        *n = 0;
    }
    return rc;
}
