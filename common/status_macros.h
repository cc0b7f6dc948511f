// Early-return helpers for absl::Status; Abseil 20220623 ships none of its own.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CHURNLAB_CONCAT_INNER(a, b) a##b
#define CHURNLAB_CONCAT(a, b) CHURNLAB_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                            \
  do {                                                   \
    ::absl::Status churnlab_status_ = (expr);            \
    if (!churnlab_status_.ok()) return churnlab_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` declares x from an OK StatusOr, or returns its status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  CHURNLAB_ASSIGN_OR_RETURN_IMPL(CHURNLAB_CONCAT(churnlab_statusor_, __LINE__), lhs, expr)
#define CHURNLAB_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()
