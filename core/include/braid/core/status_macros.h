// Two small macros for absl::Status plumbing, used across all components.
#ifndef BRAID_CORE_STATUS_MACROS_H_
#define BRAID_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define BRAID_CONCAT_INNER_(a, b) a##b
#define BRAID_CONCAT_(a, b) BRAID_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the caller if not OK.
#define BRAID_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    ::absl::Status braid_status_ = (expr);            \
    if (!braid_status_.ok()) return braid_status_;    \
  } while (0)

// `lhs` = value of `rexpr` (an absl::StatusOr<T>), or returns its status.
#define BRAID_ASSIGN_OR_RETURN(lhs, rexpr) \
  BRAID_ASSIGN_OR_RETURN_IMPL_(BRAID_CONCAT_(braid_statusor_, __LINE__), lhs, rexpr)
#define BRAID_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

#endif  // BRAID_CORE_STATUS_MACROS_H_
