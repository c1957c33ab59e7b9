/*
 * run_dir.c - run folders of the training commands (see run_dir.h).
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run_dir.h"

int cli_join(char *buf, const char *dir, const char *name)
{
    int n = snprintf(buf, CLI_PATH_LEN, "%s/%s", dir, name);
    return n > 0 && n < CLI_PATH_LEN ? 0 : -1;
}

int cli_write_atomic(const char *path, const char *text)
{
    char tmp[CLI_PATH_LEN + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

char *cli_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(f);
    if (!buf)
        buf = calloc(1, 1);
    else
        buf[len] = '\0';
    return buf;
}

static void remove_tree(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[CLI_PATH_LEN];
    struct stat st;
    if (!d)
        return;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && cli_join(path, dir, e->d_name) == 0) {
            if (depth > 0 && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(path, depth - 1);
            else
                unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

void cli_remove_dir(const char *dir)
{
    remove_tree(dir, 1);
}

int cli_current_checkpoint(const char *out, char *dir)
{
    char path[CLI_PATH_LEN];
    if (cli_join(path, out, "checkpoint.json"))
        return -1;
    char *text = cli_read_file(path);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *d = o ? cJSON_GetObjectItemCaseSensitive(o, "dir") : NULL;
    int rc = -1;
    if (cJSON_IsString(d) && !strchr(d->valuestring, '/') && cli_join(dir, out, d->valuestring) == 0)
        rc = 0;
    cJSON_Delete(o);
    return rc;
}

/* Remove every ckpt-* folder except `keep`. */
static void prune_checkpoints(const char *out, const char *keep)
{
    DIR *d = opendir(out);
    struct dirent *e;
    char path[CLI_PATH_LEN];
    if (!d)
        return;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "ckpt-", 5) == 0 && strcmp(e->d_name, keep) &&
            cli_join(path, out, e->d_name) == 0)
            cli_remove_dir(path);
    closedir(d);
}

int cli_commit_checkpoint(const char *out, const char *name, const char *cmd)
{
    char path[CLI_PATH_LEN], json[CLI_PATH_LEN + 32];
    snprintf(json, sizeof json, "{\"dir\": \"%s\"}\n", name);
    if (cli_join(path, out, "checkpoint.json") || cli_write_atomic(path, json)) {
        fprintf(stderr, "scalar: %s: cannot write %s/checkpoint.json\n", cmd, out);
        return -1;
    }
    prune_checkpoints(out, name);
    return 0;
}

FILE *cli_open_log(const char *out, const char *header, int64_t step)
{
    char path[CLI_PATH_LEN];
    if (cli_join(path, out, "log.csv"))
        return NULL;
    char *old = step > 0 ? cli_read_file(path) : NULL;
    FILE *f = fopen(path, "w");
    if (!f) {
        free(old);
        return NULL;
    }
    fputs(header, f);
    if (old) {
        char *line = strchr(old, '\n');
        while (line && line[1]) {
            char *next = strchr(line + 1, '\n');
            long long s = atoll(line + 1);
            if (s < step && next)
                fwrite(line + 1, 1, (size_t)(next - line), f);
            line = next;
        }
    }
    free(old);
    fflush(f);
    return f;
}
