/*
 * corpus.h - the demo corpus: the English fortunes of Debian's `fortunes`
 * package, the text the CLI trains on when given no data file.
 */
#ifndef SCALAR_TOOLS_CORPUS_H
#define SCALAR_TOOLS_CORPUS_H

#include <stddef.h>

/* Where Debian installs the fortunes; $SCALAR_FORTUNES_DIR overrides it. */
#define CLI_FORTUNES_DIR "/usr/share/games/fortunes"

/* The corpus files: the regular files directly in the fortunes folder whose
 * names have no extension (no '.': the *.dat indexes, the *.u8 links and
 * hidden files are left out), not symlinks and not subfolders such as off/,
 * sorted by name with strcmp so the concatenation is the same everywhere.
 *
 * On success returns CLI_OK with *paths holding *n malloc'ed "DIR/NAME"
 * strings (free with cli_corpus_paths_free).  On failure (no folder, no
 * files, no memory) prints `scalar: <cmd>: <reason>` to stderr, suggesting
 * `make deps`, and returns CLI_FAIL with *paths NULL and *n 0. */
int cli_default_corpus_paths(const char *cmd, char ***paths, size_t *n);

void cli_corpus_paths_free(char **paths, size_t n);

#endif /* SCALAR_TOOLS_CORPUS_H */
