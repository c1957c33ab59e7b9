/*
 * run_dir.h - the run folders of the training commands (train-model,
 * train-sae): atomic text files, checkpoint folders named by
 * checkpoint.json, log.csv that a resumed run rewrites from its step.
 *
 * A checkpoint folder is complete before checkpoint.json (written
 * atomically) names it; older ckpt-* folders are removed afterwards.  A kill
 * at any moment leaves either the old or the new checkpoint, never half of one.
 */
#ifndef SCALAR_TOOLS_RUN_DIR_H
#define SCALAR_TOOLS_RUN_DIR_H

#include <stdint.h>
#include <stdio.h>

#define CLI_PATH_LEN 4096

/* buf = dir/name (buf holds CLI_PATH_LEN); -1 if too long. */
int cli_join(char *buf, const char *dir, const char *name);
/* Write `text` to `path` atomically: temp file, fsync, rename; -1 on failure. */
int cli_write_atomic(const char *path, const char *text);
/* The whole file, NUL-terminated, malloc'ed; NULL if unreadable. */
char *cli_read_file(const char *path);
/* Remove a folder, its files and its sub-folders (two levels). */
void cli_remove_dir(const char *dir);
/* The folder OUT/checkpoint.json names, into dir; -1 if there is none. */
int cli_current_checkpoint(const char *out, char *dir);
/* Point OUT/checkpoint.json at OUT/name (complete by now) and remove every
 * other ckpt-* folder; -1 (with a message) on failure. */
int cli_commit_checkpoint(const char *out, const char *name, const char *cmd);
/* OUT/log.csv with `header`, keeping the rows of steps before `step` (a
 * resumed run rewrites the rest); NULL on failure. */
FILE *cli_open_log(const char *out, const char *header, int64_t step);

#endif
