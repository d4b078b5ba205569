// What a writer learns about a vector's values while copying them: whether
// it holds NA (or NaN) and whether it is sorted. Readers answer R's
// "is it sorted, has it NAs" questions from it instead of scanning again
// (FORMAT.md 2.2, node flags). Summaries of consecutive ranges merge, so the
// ranges may be scanned separately (by several threads).
#pragma once

#include <cstdint>

#include "format.h"

namespace shmr {

struct ValueSummary {
  bool empty = true;
  bool no_missing = true;
  bool increasing = true;  // non-decreasing
  bool decreasing = true;  // non-increasing
  // The first and last values (exact for 32-bit integers too).
  double first = 0;
  double last = 0;

  // True when no further value can change the node flags.
  bool settled() const noexcept { return !no_missing && !increasing && !decreasing; }
};

// True for the kinds whose values are summarised (Logical, Integer, Double).
bool has_value_summary(format::NodeKind kind) noexcept;

// Summary of `count` values of `kind` at `data`.
ValueSummary summarize_values(format::NodeKind kind, const void* data, uint64_t count) noexcept;

// Summary of the range `before` followed by the range `after`.
ValueSummary merge_summaries(const ValueSummary& before, const ValueSummary& after) noexcept;

// Node flags (kNodeValuesScanned and what it vouches for) of a summary.
// Sortedness is recorded only for Integer and Double nodes without NA.
uint32_t summary_flags(format::NodeKind kind, const ValueSummary& summary) noexcept;

}  // namespace shmr
