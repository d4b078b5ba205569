// The R headers, in the order Altrep.h needs (it relies on SEXP, Rboolean
// and DllInfo being declared first). Include this instead of R headers.
#pragma once

#include <cpp11/R.hpp>
#include <R_ext/Rdynload.h>
#include <R_ext/Altrep.h>
#include <Rversion.h>
