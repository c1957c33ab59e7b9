/*
 * file.c - read-only file mapping, and atomic writes (temp + fsync + rename).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../internal.h"

scalar_status scalar__file_map(scalar__mapped_file *out, const char *path, const char *caller)
{
    struct stat sb;
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return scalar__error_set(SCALAR_E_IO, "%s: %s: %s", caller, path, strerror(errno));
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return scalar__error_set(SCALAR_E_IO, "%s: %s: %s", caller, path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return scalar__error_set(SCALAR_E_IO, "%s: %s: not a regular file", caller, path);
    }
    if (sb.st_size == 0) { /* mmap of 0 bytes fails; an empty view is what we mean */
        close(fd);
        return SCALAR_OK;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return scalar__error_set(SCALAR_E_IO, "%s: %s: too large to map", caller, path);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file */
    if (map == MAP_FAILED)
        return scalar__error_set(SCALAR_E_IO, "%s: %s: mmap: %s", caller, path, strerror(e));
    out->data = map;
    out->size = (size_t)sb.st_size;
    out->map = map;
    out->map_size = (size_t)sb.st_size;
    return SCALAR_OK;
}

void scalar__file_unmap(scalar__mapped_file *file)
{
    if (file->map)
        munmap(file->map, file->map_size);
    memset(file, 0, sizeof *file);
}

/* ---- atomic writes ---- */

static void atomic_release(scalar__atomic_file *af)
{
    scalar__free(af->ctx, af->tmp_path);
    scalar__free(af->ctx, af->path);
    af->tmp_path = af->path = NULL;
    af->fd = -1;
}

scalar_status scalar__atomic_open(scalar__atomic_file *af, scalar_ctx *ctx, const char *path,
                                  const char *caller)
{
    static const char suffix[] = ".tmp.XXXXXX";
    size_t n = strlen(path);
    memset(af, 0, sizeof *af);
    af->fd = -1;
    af->ctx = ctx;
    af->path = scalar__strdup(ctx, path, caller);
    af->tmp_path = scalar__alloc(ctx, n + sizeof suffix, caller);
    if (!af->path || !af->tmp_path) {
        atomic_release(af);
        return SCALAR_E_NOMEM;
    }
    memcpy(af->tmp_path, path, n);
    memcpy(af->tmp_path + n, suffix, sizeof suffix);
    af->fd = mkstemp(af->tmp_path);
    if (af->fd < 0) {
        scalar_status st = scalar__error_set(SCALAR_E_IO, "%s: %s: cannot create a temporary "
                                             "file: %s", caller, path, strerror(errno));
        atomic_release(af);
        return st;
    }
    /* mkstemp makes 0600; a checkpoint should read like any file the user writes. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(af->fd, 0666 & ~mask);
    return SCALAR_OK;
}

scalar_status scalar__atomic_write(scalar__atomic_file *af, const void *data, size_t size)
{
    const unsigned char *p = data;
    while (size > 0) {
        ssize_t w = write(af->fd, p, size > (1u << 30) ? (1u << 30) : size);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return scalar__error_set(SCALAR_E_IO, "write %s: %s", af->path, strerror(errno));
        }
        p += w;
        size -= (size_t)w;
    }
    return SCALAR_OK;
}

static void fsync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse directory fsync */
        close(fd);
    }
}

scalar_status scalar__atomic_commit(scalar__atomic_file *af)
{
    scalar_status st = SCALAR_OK;
    if (fsync(af->fd) != 0)
        st = scalar__error_set(SCALAR_E_IO, "fsync %s: %s", af->tmp_path, strerror(errno));
    if (close(af->fd) != 0 && st == SCALAR_OK)
        st = scalar__error_set(SCALAR_E_IO, "close %s: %s", af->tmp_path, strerror(errno));
    af->fd = -1;
    if (st == SCALAR_OK && rename(af->tmp_path, af->path) != 0)
        st = scalar__error_set(SCALAR_E_IO, "rename to %s: %s", af->path, strerror(errno));
    if (st != SCALAR_OK) {
        unlink(af->tmp_path);
    } else {
        fsync_parent(af->path);
    }
    atomic_release(af);
    return st;
}

void scalar__atomic_abort(scalar__atomic_file *af)
{
    if (af->fd >= 0) {
        close(af->fd);
        unlink(af->tmp_path);
    }
    atomic_release(af);
}

int scalar__is_dir(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 && S_ISDIR(s.st_mode);
}

scalar_status scalar__make_dir(const char *dir, const char *caller)
{
    if (mkdir(dir, 0777) == 0 || (errno == EEXIST && scalar__is_dir(dir)))
        return SCALAR_OK;
    return scalar__error_set(SCALAR_E_IO, "%s: cannot create folder %s: %s", caller, dir,
                             errno == EEXIST ? "a file of that name exists" : strerror(errno));
}
