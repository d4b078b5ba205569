#include "value_scan.h"

#include <climits>

namespace shmr {

using format::NodeKind;

namespace {

// Branch-free over a block, so the compiler can vectorise it; the caller
// stops once nothing can change any more. Once the values so far are known
// to be in no order, only missing values are looked for: that halves the
// scan of a typical (unsorted, complete) vector, which is read to its end.
template <typename T, typename IsMissing>
void scan_block(const T* p, uint64_t n, ValueSummary& s, IsMissing is_missing) {
  unsigned missing = 0, up = 1, down = 1;
  for (uint64_t i = 0; i < n; ++i) missing |= is_missing(p[i]);
  if (s.empty || s.increasing || s.decreasing) {
    for (uint64_t i = 1; i < n; ++i) {
      up &= static_cast<unsigned>(p[i - 1] <= p[i]);
      down &= static_cast<unsigned>(p[i - 1] >= p[i]);
    }
  } else {
    up = down = 0;
  }
  ValueSummary block;
  block.empty = false;
  block.no_missing = missing == 0;
  block.increasing = up != 0;
  block.decreasing = down != 0;
  block.first = static_cast<double>(p[0]);
  block.last = static_cast<double>(p[n - 1]);
  s = merge_summaries(s, block);
}

template <typename T, typename IsMissing>
ValueSummary summarize(const void* data, uint64_t count, IsMissing is_missing) {
  constexpr uint64_t kBlock = 4096;
  const T* p = static_cast<const T*>(data);
  ValueSummary s;
  for (uint64_t at = 0; at < count && !s.settled(); at += kBlock) {
    const uint64_t n = count - at < kBlock ? count - at : kBlock;
    scan_block(p + at, n, s, is_missing);
  }
  if (s.settled() && count > 0) {
    // The first and last values still describe the whole range.
    s.first = static_cast<double>(p[0]);
    s.last = static_cast<double>(p[count - 1]);
  }
  return s;
}

}  // namespace

bool has_value_summary(NodeKind kind) noexcept {
  return kind == NodeKind::Logical || kind == NodeKind::Integer || kind == NodeKind::Double;
}

ValueSummary summarize_values(NodeKind kind, const void* data, uint64_t count) noexcept {
  switch (kind) {
    case NodeKind::Logical:
    case NodeKind::Integer:
      return summarize<int32_t>(data, count, [](int32_t v) { return v == INT_MIN ? 1u : 0u; });
    case NodeKind::Double:
      return summarize<double>(data, count, [](double v) { return v != v ? 1u : 0u; });
    default: {
      ValueSummary unknown;
      unknown.empty = count == 0;
      unknown.no_missing = unknown.increasing = unknown.decreasing = false;
      return unknown;
    }
  }
}

ValueSummary merge_summaries(const ValueSummary& before, const ValueSummary& after) noexcept {
  if (before.empty) return after;
  if (after.empty) return before;
  ValueSummary s;
  s.empty = false;
  s.no_missing = before.no_missing && after.no_missing;
  // A NaN at the seam compares false both ways, which is right: a range with
  // NaN is never recorded as sorted.
  s.increasing = before.increasing && after.increasing && before.last <= after.first;
  s.decreasing = before.decreasing && after.decreasing && before.last >= after.first;
  s.first = before.first;
  s.last = after.last;
  return s;
}

uint32_t summary_flags(NodeKind kind, const ValueSummary& summary) noexcept {
  if (!has_value_summary(kind)) return 0;
  uint32_t flags = format::kNodeValuesScanned;
  if (!summary.no_missing) return flags;
  flags |= format::kNodeNoMissing;
  if (kind == NodeKind::Logical) return flags;
  if (summary.increasing) flags |= format::kNodeIncreasing;
  if (summary.decreasing) flags |= format::kNodeDecreasing;
  return flags;
}

}  // namespace shmr
