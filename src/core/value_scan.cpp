#include "value_scan.h"

#include <climits>
#include <cstring>

namespace shmr {

using format::NodeKind;

namespace {

// The scan of a small share runs on the caller's thread after the copy, so
// its speed is part of every share. Compilers do not vectorise these loops
// at R's usual -O2, so where GCC's vector extensions exist (GCC and clang)
// they are written with 16-byte lanes, the width every 64-bit target has
// (SSE2, NEON): about five times the scalar loop's speed here.
#if defined(__GNUC__)
#define SHMR_VALUE_LANES 1
typedef double DoubleLanes __attribute__((vector_size(16)));
typedef int32_t IntLanes __attribute__((vector_size(16)));
#endif

struct DoubleValues {
  using Value = double;
  static unsigned missing(double v) { return v != v ? 1u : 0u; }
#if defined(SHMR_VALUE_LANES)
  using Lanes = DoubleLanes;
  static auto missing(Lanes v) { return v != v; }
#endif
};

// Logical and integer: NA is INT_MIN.
struct IntValues {
  using Value = int32_t;
  static unsigned missing(int32_t v) { return v == INT_MIN ? 1u : 0u; }
#if defined(SHMR_VALUE_LANES)
  using Lanes = IntLanes;
  static auto missing(Lanes v) { return v == Lanes{INT_MIN, INT_MIN, INT_MIN, INT_MIN}; }
#endif
};

#if defined(SHMR_VALUE_LANES)
template <typename Lanes, typename T>
inline Lanes load_lanes(const T* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Lane reductions without an early exit, which would make the compiler
// split the vector loop into per-lane moves.
template <typename Mask>
inline bool any_lane(Mask m) {
  auto any = m[0];
  for (size_t k = 1; k < sizeof m / sizeof m[0]; ++k) any |= m[k];
  return any != 0;
}

template <typename Mask>
inline bool every_lane(Mask m) {
  auto every = m[0];
  for (size_t k = 1; k < sizeof m / sizeof m[0]; ++k) every &= m[k];
  return every != 0;
}

template <typename Values>
unsigned any_missing(const typename Values::Value* p, uint64_t n) {
  using Lanes = typename Values::Lanes;
  constexpr uint64_t kLanes = sizeof(Lanes) / sizeof(typename Values::Value);
  // Four accumulators: four independent compares in flight per step.
  decltype(Values::missing(Lanes{})) seen0{}, seen1{}, seen2{}, seen3{};
  uint64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    seen0 |= Values::missing(load_lanes<Lanes>(p + i));
    seen1 |= Values::missing(load_lanes<Lanes>(p + i + kLanes));
    seen2 |= Values::missing(load_lanes<Lanes>(p + i + 2 * kLanes));
    seen3 |= Values::missing(load_lanes<Lanes>(p + i + 3 * kLanes));
  }
  unsigned missing = any_lane(seen0 | seen1 | seen2 | seen3) ? 1u : 0u;
  for (; i < n; ++i) missing |= Values::missing(p[i]);
  return missing;
}

// Whether every p[i - 1] <= p[i] (up) and every p[i - 1] >= p[i] (down); a
// NaN compares false both ways, as in the scalar loop.
template <typename Values>
void order_of(const typename Values::Value* p, uint64_t n, unsigned& up, unsigned& down) {
  using Lanes = typename Values::Lanes;
  constexpr uint64_t kLanes = sizeof(Lanes) / sizeof(typename Values::Value);
  using Mask = decltype(Values::missing(Lanes{}));
  Mask rising = ~Mask{}, falling = ~Mask{};
  uint64_t i = 1;
  for (; i + kLanes <= n; i += kLanes) {
    const Lanes before = load_lanes<Lanes>(p + i - 1), here = load_lanes<Lanes>(p + i);
    rising &= before <= here;
    falling &= before >= here;
  }
  up = every_lane(rising) ? 1u : 0u;
  down = every_lane(falling) ? 1u : 0u;
  for (; i < n; ++i) {
    up &= static_cast<unsigned>(p[i - 1] <= p[i]);
    down &= static_cast<unsigned>(p[i - 1] >= p[i]);
  }
}
#endif

// Over a block; the caller stops once nothing can change any more. Once the
// values so far are known to be in no order, only missing values are looked
// for: that halves the scan of a typical (unsorted, complete) vector, which
// is read to its end.
template <typename Values>
void scan_block(const typename Values::Value* p, uint64_t n, ValueSummary& s) {
  unsigned missing = 0, up = 1, down = 1;
  const bool order_open = s.empty || s.increasing || s.decreasing;
#if defined(SHMR_VALUE_LANES)
  missing = any_missing<Values>(p, n);
  if (order_open) order_of<Values>(p, n, up, down);
#else
  for (uint64_t i = 0; i < n; ++i) missing |= Values::missing(p[i]);
  if (order_open) {
    for (uint64_t i = 1; i < n; ++i) {
      up &= static_cast<unsigned>(p[i - 1] <= p[i]);
      down &= static_cast<unsigned>(p[i - 1] >= p[i]);
    }
  }
#endif
  if (!order_open) up = down = 0;
  ValueSummary block;
  block.empty = false;
  block.no_missing = missing == 0;
  block.increasing = up != 0;
  block.decreasing = down != 0;
  block.first = static_cast<double>(p[0]);
  block.last = static_cast<double>(p[n - 1]);
  s = merge_summaries(s, block);
}

template <typename Values>
ValueSummary summarize(const void* data, uint64_t count) {
  constexpr uint64_t kBlock = 4096;
  const auto* p = static_cast<const typename Values::Value*>(data);
  ValueSummary s;
  for (uint64_t at = 0; at < count && !s.settled(); at += kBlock) {
    const uint64_t n = count - at < kBlock ? count - at : kBlock;
    scan_block<Values>(p + at, n, s);
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
      return summarize<IntValues>(data, count);
    case NodeKind::Double:
      return summarize<DoubleValues>(data, count);
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
