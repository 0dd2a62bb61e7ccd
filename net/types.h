// Strong integer types shared by the wire format and Raft: a Term is never a LogIndex,
// and neither is a NodeId. Arithmetic is explicit (`.value`), comparisons are free.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace uraft {

template <typename Tag, typename Rep = std::uint64_t>
struct StrongInt {
  Rep value{};

  constexpr StrongInt() = default;
  constexpr explicit StrongInt(Rep v) : value(v) {}

  friend constexpr auto operator<=>(StrongInt, StrongInt) = default;
  friend std::ostream& operator<<(std::ostream& os, StrongInt s) { return os << s.value; }
};

struct TermTag {};
struct LogIndexTag {};
struct NodeIdTag {};

using Term = StrongInt<TermTag>;          // Raft term; 0 means "before any election".
using LogIndex = StrongInt<LogIndexTag>;  // 1-based log position; 0 means "no entry".
using NodeId = StrongInt<NodeIdTag, std::uint32_t>;  // Index of a peer in the cluster, 0..n-1.

inline constexpr NodeId kNoNode{~std::uint32_t{0}};

}  // namespace uraft

template <typename Tag, typename Rep>
struct std::hash<uraft::StrongInt<Tag, Rep>> {
  std::size_t operator()(uraft::StrongInt<Tag, Rep> s) const noexcept {
    return std::hash<Rep>{}(s.value);
  }
};
