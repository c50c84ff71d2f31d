// A violated precondition is a programming error in the caller: say what it
// was and stop, as a CHECK would. Internal to worker/.
#ifndef BRAID_WORKER_PRECONDITION_H_
#define BRAID_WORKER_PRECONDITION_H_

#include <cstdlib>
#include <string>

#include "braid/core/log.h"

namespace braid::worker {

[[noreturn]] inline void PreconditionFailed(const std::string& what) {
  LogError("braid::worker: precondition failed: " + what);
  std::abort();
}

}  // namespace braid::worker

#endif  // BRAID_WORKER_PRECONDITION_H_
