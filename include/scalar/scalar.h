/**
 * @file scalar.h
 * @brief libscalar: interaction sparsity between sparse-autoencoder features.
 *
 * Include this one header: `#include <scalar/scalar.h>`, and link with
 * `pkg-config --cflags --libs scalar`.
 */
#ifndef SCALAR_SCALAR_H
#define SCALAR_SCALAR_H

#include "export.h"
#include "version.h"
#include "core.h"
#include "backend.h"
#include "io.h"
#include "data.h"
#include "model.h"
#include "sae.h"
#include "eval.h"

#endif /* SCALAR_SCALAR_H */
